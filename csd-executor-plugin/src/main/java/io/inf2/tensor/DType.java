package io.inf2.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Element types of checkpoint tensors and KV pages. All multi-byte values are little-endian. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2),
    I32("I32", 4),
    I64("I64", 8);

    public static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String safetensorsName;
    private final int byteSize;

    DType(String safetensorsName, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }

    /** The name used in safetensors headers ("F32", "F16", "BF16", ...). */
    public String safetensorsName() {
        return safetensorsName;
    }

    public boolean isFloatingPoint() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** Parses a safetensors dtype name; returns null when the type is not one this project reads. */
    public static DType fromSafetensorsName(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) {
                return t;
            }
        }
        return null;
    }

    /** Reads element {@code index} of a segment holding this type, widened to float. */
    public float getFloat(MemorySegment segment, long index) {
        return switch (this) {
            case F32 -> segment.getAtIndex(F32_LE, index);
            case F16 -> Float.float16ToFloat(segment.getAtIndex(I16_LE, index));
            case BF16 -> Float.intBitsToFloat((segment.getAtIndex(I16_LE, index) & 0xFFFF) << 16);
            default -> throw new UnsupportedOperationException(this + " is not a floating-point type");
        };
    }

    /** Writes {@code value} narrowed to this type (round to nearest even). */
    public void setFloat(MemorySegment segment, long index, float value) {
        switch (this) {
            case F32 -> segment.setAtIndex(F32_LE, index, value);
            case F16 -> segment.setAtIndex(I16_LE, index, Float.floatToFloat16(value));
            case BF16 -> segment.setAtIndex(I16_LE, index, floatToBf16(value));
            default -> throw new UnsupportedOperationException(this + " is not a floating-point type");
        }
    }

    static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40); // keep NaN a quiet NaN
        }
        int roundingBias = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
