package io.inf2.csd;

/**
 * A device's handle to an allocated KV region. Only the device that allocated it understands it;
 * pages appended to it are numbered from 0 in append order.
 */
public interface DeviceRegion {

    RegionSpec spec();

    /** Pages whose append has completed and that attention and reads may use. */
    int durablePages();
}
