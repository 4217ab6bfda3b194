package io.inf2.csd;

/**
 * A failure of the storage tier: a device I/O error, a full disk, a vanished device, a request
 * outside a region. The message is one line naming the device and the operation.
 */
public class CsdException extends RuntimeException {

    public CsdException(String message) {
        super(message);
    }

    public CsdException(String message, Throwable cause) {
        super(message, cause);
    }
}
