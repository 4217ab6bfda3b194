package io.inf2.csd;

import io.inf2.compute.cpu.CpuBackend;
import io.inf2.engine.EngineOptions;
import io.inf2.kv.KvCache;
import io.inf2.kv.KvCacheFactory;
import io.inf2.kv.KvProjector;
import io.inf2.kv.KvTraffic;
import io.inf2.model.ModelConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * The storage tier of an engine: opens the devices once and creates a {@link CsdKvCache} per engine
 * batch. Owns the devices (and, when it made it, the host CPU backend) and closes them with itself.
 */
public final class CsdKvCacheFactory implements KvCacheFactory {
    private static final System.Logger LOG = System.getLogger(CsdKvCacheFactory.class.getName());

    /** Where attention over the devices' pages is computed. */
    public enum Placement {
        /** On the devices (attention near storage); only queries and outputs cross the link. */
        CSD("csd", "attention near storage"),
        /** On the host, after reading the pages back over the link (FlexGen-style baseline). */
        STORAGE("storage", "pages read back to the host");

        private final String option;
        private final String description;

        Placement(String option, String description) {
            this.option = option;
            this.description = description;
        }

        public String option() {
            return option;
        }

        /** The placement of a {@code --kv-cache} value ("csd" or "storage"). */
        public static Placement of(String kvCache) {
            for (Placement p : values()) {
                if (p.option.equals(kvCache)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("kv cache \"" + kvCache + "\" is not a storage placement (csd, storage)");
        }
    }

    private final Placement placement;
    private final List<ComputationalStorageDevice> devices;
    private final int writebackTokens;
    private final XCachePolicy.Choice xcache;
    private final CpuBackend host;
    private final boolean ownsHost;
    private final Set<CsdKvCache> open = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    private CsdKvCacheFactory(Placement placement, List<ComputationalStorageDevice> devices, int writebackTokens,
                              XCachePolicy.Choice xcache, CpuBackend host, boolean ownsHost) {
        this.placement = placement;
        this.devices = devices;
        this.writebackTokens = writebackTokens;
        this.xcache = xcache;
        this.host = host;
        this.ownsHost = ownsHost;
    }

    /**
     * The engine's entry point: opens one emulated device per {@code options.csdDirectories()} and chooses
     * the X-cache fraction ({@code options.xcacheFraction()}, or INF²'s rule when NaN). Host-side
     * attention runs on a CPU backend of {@code options.threads()} threads that the factory owns.
     */
    public static CsdKvCacheFactory open(EngineOptions options, ModelConfig model) {
        CpuBackend host = new CpuBackend(options.threads());
        try {
            return open(options, model, host, true);
        } catch (RuntimeException e) {
            host.close();
            throw e;
        }
    }

    /** As {@link #open(EngineOptions, ModelConfig)}, with host-side attention on the engine's CPU backend. */
    public static CsdKvCacheFactory open(EngineOptions options, ModelConfig model, CpuBackend host) {
        return open(options, model, host, false);
    }

    private static CsdKvCacheFactory open(EngineOptions options, ModelConfig model, CpuBackend host, boolean ownsHost) {
        Placement placement = Placement.of(options.kvCache());
        List<Path> dirs = options.csdDirectories();
        if (dirs.isEmpty()) {
            throw new IllegalArgumentException("kv cache " + placement.option() + " needs at least one device directory");
        }
        List<ComputationalStorageDevice> devices = new ArrayList<>();
        try {
            for (int i = 0; i < dirs.size(); i++) {
                devices.add(EmulatedCsd.open("csd" + i, dirs.get(i), options.csdThreads()));
            }
            XCachePolicy.Choice xcache;
            if (placement == Placement.STORAGE) {
                xcache = new XCachePolicy.Choice(0, false, "the storage baseline keeps no X");
            } else if (Double.isNaN(options.xcacheFraction())) {
                xcache = XCachePolicy.automatic(model, devices);
            } else {
                xcache = XCachePolicy.configured(options.xcacheFraction());
            }
            CsdKvCacheFactory factory = new CsdKvCacheFactory(placement, devices, checkedPageTokens(options.writebackTokens()),
                    xcache, host, ownsHost);
            LOG.log(System.Logger.Level.INFO, factory.describe());
            return factory;
        } catch (RuntimeException e) {
            for (ComputationalStorageDevice d : devices) {
                d.close();
            }
            throw e;
        }
    }

    /**
     * A factory over devices opened by the caller (tests, benchmarks, other device implementations);
     * it takes ownership of the devices, not of {@code host}.
     */
    public static CsdKvCacheFactory withDevices(Placement placement, List<? extends ComputationalStorageDevice> devices,
                                                int writebackTokens, XCachePolicy.Choice xcache, CpuBackend host) {
        if (devices.isEmpty()) {
            throw new IllegalArgumentException("a storage placement needs at least one device");
        }
        XCachePolicy.Choice x = placement == Placement.STORAGE
                ? new XCachePolicy.Choice(0, false, "the storage baseline keeps no X") : xcache;
        return new CsdKvCacheFactory(placement, List.copyOf(devices), checkedPageTokens(writebackTokens), x, host, false);
    }

    private static int checkedPageTokens(int writebackTokens) {
        if (writebackTokens < 1) {
            throw new IllegalArgumentException("writeback page size must be at least 1 token, got " + writebackTokens);
        }
        return writebackTokens;
    }

    @Override
    public KvCache create(ModelConfig model, int slots, int maxTokens, KvProjector projector, KvTraffic traffic) {
        if (closed) {
            throw new IllegalStateException("the KV cache factory is closed");
        }
        // The automatic choice never keeps X that is larger than K plus V, whatever model it was made for.
        double fraction = xcache.automatic() && !XCachePolicy.xNoLargerThanKv(model) ? 0 : xcache.fraction();
        CsdKvCache cache = new CsdKvCache(placement, devices, host, model, slots, maxTokens, writebackTokens, fraction,
                projector, traffic, open::remove);
        open.add(cache);
        return cache;
    }

    public Placement placement() {
        return placement;
    }

    /** The fraction of sequences whose X is kept instead of K and V. */
    public double xcacheFraction() {
        return xcache.fraction();
    }

    public int writebackTokens() {
        return writebackTokens;
    }

    public List<ComputationalStorageDevice> devices() {
        return devices;
    }

    /** Per-device counters, for the engine's statistics and metrics. */
    public List<DeviceStatistics> deviceStatistics() {
        return devices.stream().map(ComputationalStorageDevice::statistics).toList();
    }

    @Override
    public List<String> deviceNames() {
        return devices.stream().map(ComputationalStorageDevice::name).toList();
    }

    @Override
    public String describe() {
        return "kv-cache=" + placement.option() + " (" + placement.description + ") on " + devices.size() + " device(s) ["
                + devices.stream().map(ComputationalStorageDevice::describe).collect(Collectors.joining("; "))
                + "], writeback page " + writebackTokens + " token(s), X-cache " + xcache.describe();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException first = null;
        for (CsdKvCache cache : List.copyOf(open)) {
            cache.close();
        }
        for (ComputationalStorageDevice d : devices) {
            try {
                d.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (ownsHost) {
            host.close();
        }
        if (first != null) {
            throw first;
        }
    }
}
