package io.inf2.cli;

/** Bad usage or input on the command line; printed as one line, exit status 2. */
final class CliException extends RuntimeException {
    CliException(String message) {
        super(message);
    }
}
