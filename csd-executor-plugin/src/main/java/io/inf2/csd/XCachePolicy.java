package io.inf2.csd;

import io.inf2.model.ModelConfig;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * How much of the work the cooperative X-cache takes: the fraction α of sequences whose layer input X
 * is kept in host memory (K and V recomputed by the compute backend) instead of K and V on the devices.
 *
 * <p>INF²'s rule: α = 2·B_link / (B_storage + B_link), rounded to a power of two, where B_storage is
 * the devices' aggregate internal read bandwidth and B_link the host interconnect over which X
 * travels to the compute backend. Two limits apply on top:
 * <ul>
 *   <li>α = 0 when X is larger than K plus V (grouped-query models with hidden > 2·kvDim): recomputing
 *       would move more bytes than reading, so the X-cache cannot help;</li>
 *   <li>α ≤ 1/2: the rule exceeds 1 whenever the link is faster than storage (always so for emulated
 *       devices, whose "link" is host memory), and a cooperative split that left the devices idle
 *       would defeat attention near storage; INF²'s own systems land at 1/2.</li>
 * </ul>
 */
public final class XCachePolicy {

    /** Bytes each device reads in the start-up probe. */
    static final long STORAGE_PROBE_BYTES = 32L << 20;
    private static final long LINK_PROBE_BYTES = 32L << 20;

    /** The chosen fraction, whether the rule chose it, and why (for logs). */
    public record Choice(double fraction, boolean automatic, String reason) {
        public String describe() {
            return fractionText(fraction) + " (" + reason + ")";
        }
    }

    private XCachePolicy() {
    }

    /** True when X (hidden values per token) is no larger than K plus V (2·kvDim values per token). */
    public static boolean xNoLargerThanKv(ModelConfig model) {
        return model.hidden() <= 2L * model.kvDim();
    }

    /** INF²'s rule, rounded to the nearest power of two (in log scale) and capped at 1/2. */
    public static double rule(double storageBytesPerSecond, double linkBytesPerSecond) {
        if (!(storageBytesPerSecond > 0) || !(linkBytesPerSecond > 0)) {
            throw new IllegalArgumentException("bandwidths must be positive: storage " + storageBytesPerSecond
                    + " B/s, link " + linkBytesPerSecond + " B/s");
        }
        double raw = 2 * linkBytesPerSecond / (storageBytesPerSecond + linkBytesPerSecond);
        long halvings = Math.max(1, Math.round(-Math.log(raw) / Math.log(2)));
        return Math.scalb(1.0, (int) -Math.min(halvings, 30));
    }

    /** A configured fraction as given, checked. */
    public static Choice configured(double fraction) {
        if (!(fraction >= 0 && fraction <= 1)) {
            throw new IllegalArgumentException("X-cache fraction must be from 0 to 1, got " + fraction);
        }
        return new Choice(fraction, false, "configured");
    }

    /** The automatic choice for {@code model} on {@code devices}, measuring bandwidths only when needed. */
    public static Choice automatic(ModelConfig model, List<? extends ComputationalStorageDevice> devices) {
        if (!xNoLargerThanKv(model)) {
            return new Choice(0, true, "auto: X (" + model.hidden() + " values per token) is larger than K plus V ("
                    + 2 * model.kvDim() + ")");
        }
        double storage = measureStorageBandwidth(devices, STORAGE_PROBE_BYTES);
        double link = measureLinkBandwidth();
        double alpha = rule(storage, link);
        return new Choice(alpha, true, String.format(Locale.ROOT, "auto: B_storage %.2f GB/s over %d device(s), B_link %.2f GB/s",
                storage / 1e9, devices.size(), link / 1e9));
    }

    /**
     * Aggregate internal read bandwidth: the sum of the devices' probes, run at the same time so that
     * devices sharing a disk divide its bandwidth in the figure as they would in use.
     */
    public static double measureStorageBandwidth(List<? extends ComputationalStorageDevice> devices, long bytesPerDevice) {
        List<CompletableFuture<Double>> probes = new ArrayList<>();
        try (ExecutorService oneThreadEach = Executors.newThreadPerTaskExecutor(Thread.ofPlatform().daemon().factory())) {
            for (ComputationalStorageDevice d : devices) {
                probes.add(CompletableFuture.supplyAsync(() -> d.probeReadBandwidth(bytesPerDevice), oneThreadEach));
            }
            double sum = 0;
            for (CompletableFuture<Double> p : probes) {
                try {
                    sum += p.join();
                } catch (CompletionException e) {
                    throw e.getCause() instanceof RuntimeException r ? r : e;
                }
            }
            return sum;
        }
    }

    /**
     * The host interconnect for emulated devices: host memory copy bandwidth, the path X takes from the
     * X-cache to a CPU compute backend (best of three copies of 32 MiB).
     */
    public static double measureLinkBandwidth() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(LINK_PROBE_BYTES, 4096);
            MemorySegment dst = arena.allocate(LINK_PROBE_BYTES, 4096);
            src.fill((byte) 1);
            dst.fill((byte) 0);
            long best = Long.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                long t0 = System.nanoTime();
                MemorySegment.copy(src, 0, dst, 0, LINK_PROBE_BYTES);
                best = Math.min(best, System.nanoTime() - t0);
            }
            return LINK_PROBE_BYTES * 1e9 / Math.max(1, best);
        }
    }

    static String fractionText(double fraction) {
        if (fraction == 0) {
            return "0";
        }
        double inverse = 1 / fraction;
        if (inverse == Math.rint(inverse)) {
            return fraction == 1 ? "1" : "1/" + (long) inverse;
        }
        return String.format(Locale.ROOT, "%.3f", fraction);
    }
}
