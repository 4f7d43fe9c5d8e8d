#pragma once
#include <cuda_runtime.h>

namespace numtrans {
// out[r, :] = softmax(x[r, :]) for device pointers; returns the launch status.
template <typename T>
cudaError_t softmax_rows_cuda(const T* x, T* out, long long rows, long long cols);
}  // namespace numtrans
