// Fused scaled-dot-product attention on an NVIDIA GPU: the contract shared by the kernels.
//
// Lesson map (read after the CPU version in csrc/cpu/, which it mirrors):
//   attention.cuh          this file: shapes, strides, masks, the host functions on offer
//   attention_tile.cuh     the building blocks: tile sizes, loading a tile into shared memory,
//                          the two small matrix products every kernel is made of, masking
//   attention_forward.cu   the forward: FlashAttention-2's loop, one thread block per query tile
//   attention_backward.cu  the backward: D = rowsum(dO * O), then one thread block per key tile
//                          (dK, dV in registers, dQ by atomicAdd), or a second, deterministic
//                          kernel for dQ
//   module.cpp             the Python bindings: NumPy arrays (copied to the GPU and back) or
//                          raw device pointers (CuPy arrays, torch tensors; no copy)
//
// Notation and semantics are exactly those of csrc/cpu/attention.hpp (and PyTorch's
// F.scaled_dot_product_attention):
//   q (B, H, N, D)   k (B, H, M, D)   v (B, H, M, Dv)   ->   out (B, H, N, Dv), lse (B, H, N)
//   S = scale * q k^T + mask,  P = softmax(S) over keys,  out = P v,  lse = log sum_j exp(S_ij)
//   A query whose every key is masked gets out = 0, lse = -inf and zero gradients.
//   Causal is top-left aligned: query i sees keys j <= i.
// float32 and float64; head dims D, Dv up to 256 (kMaxHeadDim).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace numtrans {
namespace gpu {

constexpr int kMaxHeadDim = 256;

// A read-only strided 4-D view (B, H, rows, cols) of device memory, strides in elements.
// Zero strides broadcast (a (B, 1, 1, M) key-padding mask is read through a (B, H, N, M) view
// without being copied); negative strides are fine.
template <typename T>
struct View4 {
  const T* data = nullptr;
  std::int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 1;
  __host__ __device__ const T* row(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return data + (b * s0 + h * s1 + i * s2);
  }
};

enum MaskKind : int { kNoMask = 0, kBoolMask = 1, kAddMask = 2 };

// Everything the kernels read. Device pointers only.
template <typename T>
struct Problem {
  std::int64_t B = 0, H = 0, N = 0, M = 0, D = 0, Dv = 0;
  View4<T> q, k, v;
  int mask_kind = kNoMask;
  View4<std::uint8_t> mask_bool;  // (B, H, N, M); nonzero = may attend
  View4<T> mask_add;              // (B, H, N, M); added to the scaled scores, -inf = may not
  bool causal = false;
  double scale = 1.0;
};

// The forward pass: writes out (B, H, N, Dv) and lse (B, H, N), both C-contiguous device
// arrays. Asynchronous on `stream`. Throws std::invalid_argument for a shape the kernels do not
// support and std::runtime_error, naming the call, when CUDA reports an error.
template <typename T>
void attention_forward(const Problem<T>& p, T* out, T* lse, cudaStream_t stream);

// The backward pass: reads dout and out (B, H, N, Dv, any strides) and the forward's lse
// (C-contiguous), writes dq (B, H, N, D), dk (B, H, M, D), dv (B, H, M, Dv), C-contiguous.
// `workspace` holds backward_workspace_elems(p) elements of T. deterministic = false adds the
// dQ contributions of different key tiles with atomicAdd (fast, but the order of the additions,
// hence the last bits, can change from run to run); true computes dQ in a second kernel that
// loops over key tiles in a fixed order (bitwise repeatable, about 40 % more arithmetic).
template <typename T>
void attention_backward(const Problem<T>& p, const View4<T>& dout, const View4<T>& out,
                        const T* lse, T* dq, T* dk, T* dv, T* workspace, bool deterministic,
                        cudaStream_t stream);

// D_i = rowsum(dO * O) and the lse in the kernels' units: two numbers per query row.
inline std::int64_t backward_workspace_elems(std::int64_t B, std::int64_t H, std::int64_t N) {
  return 2 * B * H * N;
}

// Which tile shapes the kernels use for a head dim (max(D, Dv)) and an element size, and the
// shared memory each thread block asks for; numtrans._cuda.attention_tiles() reports this.
struct KernelTiles {
  int head_dim_padded;                        // D and Dv are zero-padded up to this (32 ... 256)
  int fwd_q, fwd_k, fwd_smem;                 // forward: queries x keys per tile, bytes
  int bwd_k, bwd_q, bwd_smem;                 // backward (dK, dV): keys x queries per tile
  int dq_q, dq_k, dq_smem;                    // deterministic dQ kernel
  int threads;                                // per thread block
};
KernelTiles attention_tiles(int element_bytes, int head_dim);

}  // namespace gpu
}  // namespace numtrans
