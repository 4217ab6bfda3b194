package io.inf2.config;

/** A configuration value that is missing, unknown or invalid; the message names the key or flag. */
public class ConfigException extends IllegalArgumentException {
    public ConfigException(String message) {
        super(message);
    }
}
