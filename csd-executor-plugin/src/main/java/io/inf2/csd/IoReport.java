package io.inf2.csd;

/**
 * Bytes a device operation moved on the device's own media (including alignment and
 * read-modify-write overhead), for traffic accounting.
 */
public record IoReport(long bytesRead, long bytesWritten) {

    public static final IoReport NONE = new IoReport(0, 0);
}
