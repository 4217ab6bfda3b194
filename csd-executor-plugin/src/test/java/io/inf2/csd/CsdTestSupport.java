package io.inf2.csd;

import io.inf2.model.Architecture;
import io.inf2.model.ModelConfig;
import io.inf2.model.RopeScaling;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/** Shared pieces of the storage-tier tests: device directories on the real disk, models, references. */
final class CsdTestSupport {

    /** Under target/, on the build's disk (not tmpfs), so O_DIRECT is exercised for real. */
    static final Path ROOT = Path.of("target", "csd-tests").toAbsolutePath();

    private CsdTestSupport() {
    }

    /** A fresh, empty directory {@code target/csd-tests/<name>}. */
    static Path freshDirectory(String name) {
        Path dir = ROOT.resolve(name);
        deleteRecursively(dir);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static ModelConfig model(int layers, int heads, int kvHeads, int headDim, int hidden) {
        return new ModelConfig(Architecture.LLAMA, 32, hidden, hidden, layers, heads, kvHeads, headDim, 16, 8192, 1e-5,
                true, "silu", false, false, false, 10000, RopeScaling.NONE, 1, List.of(2), 0);
    }

    static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    static float half(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    /**
     * Plain softmax(q·Kᵀ/√d)·V in double precision over {@code tokens} rows of {@code k} and {@code v}
     * (row stride {@code stride}, head at {@code headOffset}); returns the output and, in the last
     * element, the log-sum-exp of the scaled scores.
     */
    static double[] naiveAttention(float[] q, int qOffset, float[] k, float[] v, int headOffset, int stride, int tokens,
                                   int headDim) {
        double scale = 1 / Math.sqrt(headDim);
        double[] scores = new double[tokens];
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t < tokens; t++) {
            double s = 0;
            for (int i = 0; i < headDim; i++) {
                s += (double) q[qOffset + i] * k[t * stride + headOffset + i];
            }
            scores[t] = s * scale;
            max = Math.max(max, scores[t]);
        }
        double sum = 0;
        for (int t = 0; t < tokens; t++) {
            scores[t] = Math.exp(scores[t] - max);
            sum += scores[t];
        }
        double[] out = new double[headDim + 1];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < headDim; i++) {
                out[i] += scores[t] / sum * v[t * stride + headOffset + i];
            }
        }
        out[headDim] = max + Math.log(sum);
        return out;
    }
}
