package io.inf2.plugin;

import io.inf2.config.ConfigException;
import io.inf2.config.Inf2Config;
import io.inf2.config.Settings;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The devices one executor owns: the compute backend (with the GPU Spark assigned, if any) and the CSD
 * directories its engine spreads the KV cache over.
 *
 * <p>Devices bind per executor, not per task: the executor's one engine serves all its tasks and
 * partitions every batch's cache over all the executor's CSDs, which is where INF2's gain comes from
 * (device bandwidths add up). A task's own {@code csd} assignment
 * ({@code spark.task.resource.csd.amount}) therefore only limits how many tasks Spark schedules on an
 * executor; it does not pin a task to a device.
 *
 * <p>Where devices come from, first match wins: Spark resources ({@code gpu}, and {@code csd}, whose
 * addresses are device directories); else {@code spark.inf2.backend} and {@code spark.inf2.csd};
 * else the embedded default, the CPU backend and {@code spark.inf2.emulatedCsds} emulated CSDs in a
 * directory this executor creates and deletes at shutdown.
 *
 * @param backend         "cpu", "cuda" or "auto", as the engine takes it
 * @param gpuAddresses    GPUs Spark assigned to this executor (empty when it scheduled none)
 * @param csdOrigin       where the CSDs came from, for the log
 * @param ownedDirectory  the directory of emulated CSDs this executor created, deleted when it stops
 */
record DeviceBinding(String backend, List<String> gpuAddresses, List<Path> csdDirectories, String csdOrigin,
                     Optional<Path> ownedDirectory) {

    static final String GPU_RESOURCE = "gpu";
    static final String CSD_RESOURCE = "csd";

    private static final System.Logger LOG = System.getLogger(DeviceBinding.class.getName());

    DeviceBinding {
        gpuAddresses = List.copyOf(gpuAddresses);
        csdDirectories = List.copyOf(csdDirectories);
    }

    /**
     * @param backendGiven whether spark.inf2.backend was set (rather than defaulted)
     * @param resources    Spark resources of this executor, by name, with their addresses
     * @param emulatedRoot where emulated CSDs go if none is configured
     */
    static DeviceBinding bind(Inf2Config config, boolean backendGiven, Map<String, List<String>> resources,
                              Path emulatedRoot) throws IOException {
        List<String> gpus = resources.getOrDefault(GPU_RESOURCE, List.of());
        // Without a GPU from Spark, stay on the CPU unless told otherwise: a GPU Spark did not assign may
        // belong to another executor on this host.
        String backend = backendGiven ? config.get(Settings.BACKEND) : gpus.isEmpty() ? "cpu" : "cuda";
        if (backend.equals("cpu") && !gpus.isEmpty()) {
            LOG.log(Level.WARNING, "Spark assigned GPU {0} to this executor but spark.inf2.backend=cpu: the GPU stays idle",
                    gpus);
        } else if (gpus.size() > 1) {
            LOG.log(Level.WARNING, "Spark assigned GPUs {0}; the engine uses one GPU per executor ({1}), the others stay idle",
                    gpus, gpus.getFirst());
        }

        List<String> csdAddresses = resources.getOrDefault(CSD_RESOURCE, List.of());
        List<Path> configured = config.get(Settings.CSD);
        List<Path> csds = new ArrayList<>();
        String origin;
        Optional<Path> owned = Optional.empty();
        if (!csdAddresses.isEmpty()) {
            if (!configured.isEmpty()) {
                LOG.log(Level.WARNING, "spark.inf2.csd is ignored: Spark assigned csd devices {0}", csdAddresses);
            }
            for (String address : csdAddresses) {
                csds.add(checkDevice(Path.of(address), "csd resource address " + address));
            }
            origin = "Spark resource " + CSD_RESOURCE;
        } else if (!configured.isEmpty()) {
            for (Path dir : configured) {
                csds.add(checkDevice(dir.toAbsolutePath(), Settings.CSD.sparkKey() + " entry " + dir));
            }
            origin = Settings.CSD.sparkKey();
        } else {
            int count = config.get(PluginSettings.EMULATED_CSDS);
            for (int i = 0; i < count; i++) {
                csds.add(Files.createDirectories(emulatedRoot.resolve("csd" + i)));
            }
            origin = count + " emulated under " + emulatedRoot;
            owned = count > 0 ? Optional.of(emulatedRoot) : Optional.empty();
        }
        String kvCache = config.get(Settings.KV_CACHE);
        if (csds.isEmpty() && (kvCache.equals("csd") || kvCache.equals("storage"))) {
            throw new ConfigException(Settings.KV_CACHE.sparkKey() + "=" + kvCache + " needs devices, but this executor has "
                    + "none: assign a csd resource, set " + Settings.CSD.sparkKey() + ", or set "
                    + PluginSettings.EMULATED_CSDS.sparkKey() + " above 0");
        }
        return new DeviceBinding(backend, gpus, csds, origin, owned);
    }

    /** The backend (with its GPU) first, then one {@code csd:<directory>} per CSD. */
    List<String> deviceNames() {
        List<String> names = new ArrayList<>();
        names.add(gpuAddresses.isEmpty() || backend.equals("cpu") ? backend : "gpu:" + gpuAddresses.getFirst());
        csdDirectories.forEach(d -> names.add("csd:" + d));
        return List.copyOf(names);
    }

    private static Path checkDevice(Path dir, String what) {
        if (!dir.isAbsolute()) {
            throw new ConfigException(what + ": device directories must be absolute paths");
        }
        if (!Files.isDirectory(dir)) {
            throw new ConfigException(what + ": no such directory");
        }
        if (!Files.isWritable(dir)) {
            throw new ConfigException(what + ": directory is not writable by this executor");
        }
        return dir;
    }
}
