package io.inf2.compute.cuda;

import java.util.function.Consumer;

/**
 * The copy bandwidths that bound decode on a GPU, measured with the driver's asynchronous copies and
 * timed by CUDA events on one stream (one untimed copy first, so the first-touch cost is not counted):
 * device-to-device (the HBM bound of weights resident on the GPU) and pinned host-to-device (the
 * bound of weights streamed from host memory, FlexGen's schedule).
 */
public final class CopyBandwidth {
    /** 1 GiB: long enough that the copy engines run at their steady rate. */
    private static final long DEVICE_BYTES = 1L << 30;
    private static final int DEVICE_REPEATS = 20;
    /** 512 MiB pinned: larger than any one layer of the models measured, small enough to pin quickly. */
    private static final long HOST_BYTES = 512L << 20;
    private static final int HOST_REPEATS = 8;

    private CopyBandwidth() {
    }

    /** Device-to-device copy bandwidth over 1 GiB buffers: bytes read plus bytes written per second. */
    public static double deviceToDevice(CudaContext context) {
        context.makeCurrent();
        try (DeviceBuffer a = context.allocate(DEVICE_BYTES, "bandwidth source");
             DeviceBuffer b = context.allocate(DEVICE_BYTES, "bandwidth target")) {
            double seconds = secondsFor(context, DEVICE_REPEATS,
                    stream -> context.driver().memcpyDtoDAsync(b.address(), a.address(), DEVICE_BYTES, stream.handle()));
            return 2.0 * DEVICE_BYTES * DEVICE_REPEATS / seconds;
        }
    }

    /** Host-to-device copy bandwidth from page-locked host memory: bytes moved per second. */
    public static double pinnedHostToDevice(CudaContext context) {
        context.makeCurrent();
        try (PinnedBuffer host = context.allocatePinned(HOST_BYTES);
             DeviceBuffer device = context.allocate(HOST_BYTES, "host-to-device bandwidth target")) {
            host.segment().fill((byte) 1);
            double seconds = secondsFor(context, HOST_REPEATS,
                    stream -> context.driver().memcpyHtoDAsync(device.address(), host.segment(), HOST_BYTES, stream.handle()));
            return (double) HOST_BYTES * HOST_REPEATS / seconds;
        }
    }

    /** Device time of {@code repeats} copies queued back to back on a stream of their own, after one untimed copy. */
    private static double secondsFor(CudaContext context, int repeats, Consumer<CudaStream> copy) {
        try (CudaStream stream = context.createStream();
             CudaEvent start = context.createEvent(true);
             CudaEvent end = context.createEvent(true)) {
            copy.accept(stream);
            start.record(stream);
            for (int i = 0; i < repeats; i++) {
                copy.accept(stream);
            }
            end.record(stream);
            end.synchronize();
            return end.millisSince(start) / 1e3;
        }
    }
}
