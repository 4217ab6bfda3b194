package io.inf2.spark.chat;

/** A chat template that cannot be used: bad syntax, or a construct the renderer does not support. */
public final class TemplateException extends IllegalArgumentException {
    public TemplateException(String message) {
        super(message);
    }
}
