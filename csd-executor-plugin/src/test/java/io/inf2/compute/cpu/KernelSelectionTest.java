package io.inf2.compute.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link CpuKernels#fastest()} in fresh JVMs started with and without the Vector API module. */
class KernelSelectionTest {

    /** Prints the class of the fastest kernels, and uses them once. */
    public static final class Probe {
        public static void main(String[] args) {
            CpuKernels kernels = CpuKernels.fastest();
            CpuKernels again = CpuKernels.fastest();
            float[] y = {1, 2, 3};
            kernels.axpy(2f, new float[] {1, 1, 1}, 0, y, 0, 3);
            System.out.println(kernels.getClass().getSimpleName() + " " + (kernels == again) + " " + y[2]);
        }
    }

    @Test
    void withoutTheVectorModuleTheReferenceKernelsAreUsedAndTheFallbackIsLoggedOnce(@TempDir Path dir) throws Exception {
        Result r = probe(dir, false);
        assertEquals("ReferenceKernels true 5.0", r.stdout.strip());
        assertEquals(1, count(r.stderr, "fall back to the scalar ReferenceKernels"), r.stderr);
    }

    @Test
    void withTheVectorModuleTheVectorKernelsAreUsedSilently(@TempDir Path dir) throws Exception {
        Result r = probe(dir, true);
        assertEquals("VectorKernels true 5.0", r.stdout.strip());
        assertEquals(0, count(r.stderr, "ReferenceKernels"), r.stderr);
    }

    private record Result(String stdout, String stderr) {
    }

    private static Result probe(Path dir, boolean vectorModule) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        if (vectorModule) {
            command.add("--add-modules=jdk.incubator.vector");
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Probe.class.getName());
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "probe JVM did not finish");
        String stdout = Files.readString(out, StandardCharsets.UTF_8);
        String stderr = Files.readString(err, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), stderr);
        return new Result(stdout, stderr);
    }

    private static int count(String text, String needle) {
        int n = 0;
        for (int i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }
}
