package io.inf2.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.config.Inf2Config;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** conf/: spark-defaults.conf and the resource discovery scripts, run for real. */
class ConfFilesTest {
    private static final Path CONF = Path.of("..", "conf").toAbsolutePath().normalize();
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    record Run(int exitCode, String stdout, String stderr) {
    }

    private Run run(String script, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder("bash", CONF.resolve(script).toString());
        pb.environment().remove("INF2_CSD_DIRS");
        pb.environment().put("INF2_CSD_INVENTORY", tmp.resolve("no-inventory").toString());
        pb.environment().putAll(env);
        Path out = tmp.resolve("stdout");
        Path err = tmp.resolve("stderr");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), script + " did not finish");
        return new Run(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static List<String> addresses(Run run, String name) throws IOException {
        assertEquals(0, run.exitCode(), run.stderr());
        JsonNode json = JSON.readTree(run.stdout());
        assertEquals(name, json.get("name").asText());
        List<String> addresses = new ArrayList<>();
        json.get("addresses").forEach(a -> addresses.add(a.asText()));
        return addresses;
    }

    @Test
    void sparkDefaultsEnableThePluginWithValidSettingsAndTheJdk25Flags() throws IOException {
        Map<String, String> conf = new LinkedHashMap<>();
        for (String line : Files.readAllLines(CONF.resolve("spark-defaults.conf"))) {
            String trimmed = line.strip();
            if (!trimmed.isEmpty() && !trimmed.startsWith("#")) {
                String[] kv = trimmed.split("\\s+", 2);
                conf.put(kv[0], kv[1]);
            }
        }
        assertEquals(Inf2SparkPlugin.class.getName(), conf.get("spark.plugins"));
        assertEquals("local[2]", conf.get("spark.master"));
        Inf2Config.fromSparkConf(conf, PluginSettings.catalog());
        for (String side : new String[] {"driver", "executor"}) {
            List<String> flags = List.of(conf.get("spark." + side + ".extraJavaOptions").split("\\s+"));
            for (String needed : new String[] {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                    "--sun-misc-unsafe-memory-access=allow", "--add-opens=java.base/java.nio=ALL-UNNAMED",
                    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"}) {
                assertTrue(flags.contains(needed), side + " lacks " + needed);
            }
        }
    }

    @Test
    void csdDiscoveryListsTheDirectoriesOfTheEnvironmentOrTheInventory() throws Exception {
        Path a = Files.createDirectories(tmp.resolve("dev a"));
        Path b = Files.createDirectories(tmp.resolve("dev\"b"));
        assertEquals(List.of(a.toString(), b.toString()),
                addresses(run("csd-discovery.sh", Map.of("INF2_CSD_DIRS", a + ", " + b + ",")), "csd"));

        Path inventory = tmp.resolve("csd-devices");
        Files.writeString(inventory, "# CSDs of this host\n" + b + "\n\n   " + a + "   # the second one\n");
        assertEquals(List.of(b.toString(), a.toString()),
                addresses(run("csd-discovery.sh", Map.of("INF2_CSD_INVENTORY", inventory.toString())), "csd"));

        Files.writeString(inventory, "# this host has no CSD\n");
        assertEquals(List.of(), addresses(run("csd-discovery.sh", Map.of("INF2_CSD_INVENTORY", inventory.toString())), "csd"));
    }

    @Test
    void csdDiscoveryFailsNamingTheBadDevice() throws Exception {
        Path missing = tmp.resolve("gone");
        Run fromEnv = run("csd-discovery.sh", Map.of("INF2_CSD_DIRS", missing.toString()));
        assertEquals(1, fromEnv.exitCode());
        assertEquals("", fromEnv.stdout());
        assertEquals("csd-discovery: INF2_CSD_DIRS: device directory '" + missing + "' does not exist\n", fromEnv.stderr());

        Path inventory = tmp.resolve("csd-devices");
        Files.writeString(inventory, tmp + "\nrelative/dir\n");
        Run relative = run("csd-discovery.sh", Map.of("INF2_CSD_INVENTORY", inventory.toString()));
        assertEquals(1, relative.exitCode());
        assertEquals("csd-discovery: " + inventory + ":2: device directory 'relative/dir' is not an absolute path\n",
                relative.stderr());

        Run nothing = run("csd-discovery.sh", Map.of());
        assertEquals(1, nothing.exitCode());
        assertTrue(nothing.stderr().startsWith("csd-discovery: no CSD devices configured"), nothing.stderr());
    }

    @Test
    void gpuDiscoveryReportsWhatNvidiaSmiSeesAndNothingWithoutIt() throws Exception {
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        String systemPath = "/usr/bin:/bin";
        assertEquals(List.of(), addresses(run("gpu-discovery.sh", Map.of("PATH", bin + ":" + systemPath)), "gpu"));

        Path smi = bin.resolve("nvidia-smi");
        Files.writeString(smi, "#!/bin/sh\nprintf '0\\n1\\n'\n");
        Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertEquals(List.of("0", "1"), addresses(run("gpu-discovery.sh", Map.of("PATH", bin + ":" + systemPath)), "gpu"));

        Files.writeString(smi, "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver'\nexit 9\n");
        Run failing = run("gpu-discovery.sh", Map.of("PATH", bin + ":" + systemPath));
        assertEquals(1, failing.exitCode());
        assertEquals("gpu-discovery: nvidia-smi failed: NVIDIA-SMI has failed because it could not communicate with the driver\n",
                failing.stderr());
    }
}
