package io.inf2.compute.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.inf2.nativeio.CudaLibraryLocator;
import org.junit.jupiter.api.Test;

/**
 * The copy probes give physically possible figures: host-to-device above what any PCIe 3 slot gives
 * and below any host link there is, device-to-device (HBM, read plus write) faster than both.
 */
@RequiresCuda
class CopyBandwidthTest {

    @Test
    void hostToDeviceIsSlowerThanDeviceToDeviceAndBothArePlausible() {
        try (CudaContext context = CudaContext.open(CudaLibraryLocator.create(""), 0)) {
            double hostToDevice = CopyBandwidth.pinnedHostToDevice(context);
            double deviceToDevice = CopyBandwidth.deviceToDevice(context);
            assertTrue(hostToDevice > 1e9 && hostToDevice < 1e12, "pinned host-to-device " + hostToDevice / 1e9 + " GB/s");
            assertTrue(deviceToDevice > hostToDevice && deviceToDevice < 1e14,
                    "device-to-device " + deviceToDevice / 1e9 + " GB/s against host-to-device " + hostToDevice / 1e9);
        }
    }
}
