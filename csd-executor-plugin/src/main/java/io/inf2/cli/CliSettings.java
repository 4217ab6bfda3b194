package io.inf2.cli;

import io.inf2.config.Setting;
import io.inf2.config.Settings;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Settings that only the command line has; documented with the rest in docs/configuration.md. */
public final class CliSettings {
    private CliSettings() {
    }

    public static final Setting<Path> PROMPTS = new Setting<>("cli", "prompts", "path", null,
            "inf2 generate: JSON Lines file of prompts (a string or an object with id, prompt and per-request sampling fields per line).",
            Path::of, p -> true, "a file path");
    public static final Setting<Path> OUTPUT = new Setting<>("cli", "output", "path", null,
            "inf2 generate: where results go; .jsonl or .parquet by extension.",
            Path::of, p -> p.toString().endsWith(".jsonl") || p.toString().endsWith(".parquet"),
            "a path ending in .jsonl or .parquet");
    public static final Setting<String> ARCH = Settings.choice("cli", "arch", null,
            "inf2 init-model: architecture of the preset (checked against it).", "opt", "llama");
    public static final Setting<String> PRESET = new Setting<>("cli", "preset", "name", null,
            "inf2 init-model: model shape, e.g. tiny-opt, tiny-llama, opt-6.7b, llama-3-8b (inf2 init-model --help lists all).",
            s -> s, s -> !s.isBlank(), "a preset name");
    public static final Setting<Long> INIT_SEED = new Setting<>("cli", "seed", "long", "0",
            "inf2 init-model: seed of the random weights (same seed, byte-identical checkpoint).",
            Long::parseLong, v -> true, "a 64-bit integer");
    public static final Setting<Path> OUT = new Setting<>("cli", "out", "directory", null,
            "inf2 init-model: directory to write the checkpoint to (created; must be empty if it exists).",
            Path::of, p -> true, "a directory path");
    public static final Setting<String> DTYPE = Settings.choice("cli", "dtype", "f32",
            "inf2 init-model: storage type of the weights.", "f32", "f16", "bf16");

    /** inf2 init-model's options. */
    public static List<Setting<?>> initModel() {
        return List.of(ARCH, PRESET, INIT_SEED, OUT, DTYPE);
    }

    /** inf2 generate's options: the engine catalog plus input and output. */
    public static List<Setting<?>> generate() {
        List<Setting<?>> all = new ArrayList<>(Settings.all());
        all.add(PROMPTS);
        all.add(OUTPUT);
        return all;
    }

    /** Every CLI-only setting, for the documentation. */
    public static List<Setting<?>> all() {
        return List.of(PROMPTS, OUTPUT, ARCH, PRESET, INIT_SEED, OUT, DTYPE);
    }
}
