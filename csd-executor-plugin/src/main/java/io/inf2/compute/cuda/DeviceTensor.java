package io.inf2.compute.cuda;

import io.inf2.tensor.DType;
import io.inf2.tensor.Tensor;

/** A checkpoint tensor's bytes in device memory, in the tensor's stored type and layout. */
public record DeviceTensor(Tensor source, long address) {

    public DType dtype() {
        return source.dtype();
    }

    public long byteSize() {
        return source.data().byteSize();
    }
}
