// Row-wise stable softmax on the GPU: one block per row, a shared-memory reduction for the
// row maximum and the sum. The smallest real kernel of numtrans._cuda.
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/softmax.cuh"

namespace numtrans {

template <typename T>
__global__ void softmax_rows_kernel(const T* x, T* out, long long cols) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const T* xr = x + blockIdx.x * cols;
  T* yr = out + blockIdx.x * cols;
  T m = -INFINITY;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) m = fmax(m, xr[j]);
  smem[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) smem[threadIdx.x] = fmax(smem[threadIdx.x], smem[threadIdx.x + s]);
    __syncthreads();
  }
  m = smem[0];
  __syncthreads();
  if (m == -INFINITY) {  // fully masked row
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = T(0);
    return;
  }
  T s = 0;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += exp(xr[j] - m);
  smem[threadIdx.x] = s;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) smem[threadIdx.x] += smem[threadIdx.x + k];
    __syncthreads();
  }
  const T inv = T(1) / smem[0];
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = exp(xr[j] - m) * inv;
}

template <typename T>
cudaError_t softmax_rows_cuda(const T* x, T* out, long long rows, long long cols) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int threads = 256;
  softmax_rows_kernel<T><<<static_cast<unsigned>(rows), threads, threads * sizeof(T)>>>(x, out, cols);
  return cudaGetLastError();
}

template cudaError_t softmax_rows_cuda<float>(const float*, float*, long long, long long);
template cudaError_t softmax_rows_cuda<double>(const double*, double*, long long, long long);

}  // namespace numtrans
