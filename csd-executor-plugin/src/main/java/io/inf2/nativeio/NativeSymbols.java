package io.inf2.nativeio;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/** Downcall handles for one loaded library; shared by the CUDA binding classes of this package. */
final class NativeSymbols {
    private static final Linker LINKER = Linker.nativeLinker();

    private final SymbolLookup lookup;
    private final String library;

    NativeSymbols(SymbolLookup lookup, String library) {
        this.lookup = lookup;
        this.library = library;
    }

    /**
     * The first of {@code names} the library exports. Several names cover symbols that a header
     * redirects to a versioned one in newer releases (the versioned name is listed first).
     */
    MethodHandle bind(FunctionDescriptor descriptor, String... names) {
        for (String name : names) {
            Optional<MemorySegment> symbol = lookup.find(name);
            if (symbol.isPresent()) {
                return LINKER.downcallHandle(symbol.get(), descriptor);
            }
        }
        throw new CudaException("SYMBOL_NOT_FOUND", library + " exports none of " + String.join(", ", names));
    }

    /** Reads a NUL-terminated C string that the library owns (an error name, a version string). */
    static String cString(MemorySegment pointer) {
        if (pointer.equals(MemorySegment.NULL)) {
            return null;
        }
        return pointer.reinterpret(4096).getString(0);
    }

    /** Turns a Throwable from invokeExact into an unchecked one; downcalls throw only what the JVM does. */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }
}
