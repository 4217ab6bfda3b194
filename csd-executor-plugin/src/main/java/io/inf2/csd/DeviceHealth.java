package io.inf2.csd;

/** Whether a device still serves requests; once failed it stays failed, with the first reason. */
public record DeviceHealth(boolean ok, String reason) {

    public static final DeviceHealth OK = new DeviceHealth(true, "ok");

    public static DeviceHealth failed(String reason) {
        return new DeviceHealth(false, reason);
    }
}
