package io.inf2.model;

import java.util.Locale;

/** Model families the engine implements. */
public enum Architecture {
    OPT("opt", "OPTForCausalLM"),
    LLAMA("llama", "LlamaForCausalLM");

    private final String modelType;
    private final String hfClassName;

    Architecture(String modelType, String hfClassName) {
        this.modelType = modelType;
        this.hfClassName = hfClassName;
    }

    /** The {@code model_type} value in a Hugging Face config.json. */
    public String modelType() {
        return modelType;
    }

    public String hfClassName() {
        return hfClassName;
    }

    public static Architecture fromModelType(String modelType) {
        String wanted = modelType.toLowerCase(Locale.ROOT);
        for (Architecture a : values()) {
            if (a.modelType.equals(wanted)) {
                return a;
            }
        }
        return null;
    }
}
