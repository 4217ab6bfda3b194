package io.inf2.cli;

import io.inf2.config.Inf2Config;
import io.inf2.model.presets.ModelInitializer;
import io.inf2.model.presets.ModelPreset;
import io.inf2.tensor.DType;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.stream.Collectors;

/** {@code inf2 init-model}: a deterministic random-weight checkpoint in Hugging Face's layout. */
final class InitModelCommand {
    private InitModelCommand() {
    }

    static void run(Inf2Config config, PrintStream out) {
        ModelPreset preset;
        try {
            preset = ModelPreset.named(config.get(CliSettings.PRESET));
        } catch (IllegalArgumentException e) {
            throw new CliException(e.getMessage());
        }
        if (config.isSet(CliSettings.ARCH)) {
            String arch = config.get(CliSettings.ARCH);
            String actual = preset.config().architecture().modelType();
            if (!arch.equals(actual)) {
                throw new CliException("--arch " + arch + " does not match preset " + preset.name() + ", which is " + actual);
            }
        }
        DType dtype = switch (config.get(CliSettings.DTYPE)) {
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            default -> DType.F32;
        };
        Path dir = config.get(CliSettings.OUT);
        try {
            ModelInitializer.WrittenModel written = ModelInitializer.write(preset, config.get(CliSettings.INIT_SEED), dtype, dir);
            out.printf("%s: %s, %s weights, %.1f MB in %d file(s)%n", written.directory().toAbsolutePath(), preset.name(),
                    dtype, written.weightBytes() / 1e6, written.weightFiles().size());
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write the checkpoint (" + e.getMessage() + ")", e);
        }
    }

    static String presetNames() {
        return ModelPreset.all().stream().map(ModelPreset::name).collect(Collectors.joining(", "));
    }
}
