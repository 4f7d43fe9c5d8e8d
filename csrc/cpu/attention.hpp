// Fused scaled-dot-product attention on the CPU: the contract shared by every kernel.
//
// Lesson map (read in this order):
//   attention.hpp            this file: shapes, strides, masks, the functions on offer
//   attention_reference.cpp  the plain scalar version: one query row at a time, online softmax
//   attention_simd.hpp       vectors, a polynomial exp and a small register-blocked matmul
//   attention_forward.cpp    the fast forward: FlashAttention-2's loop order over tiles
//   attention_backward.cpp   the fast backward: recompute P from the log-sum-exp, no N x N buffer
//   attention_dispatch.cpp   pick the fastest instruction set this CPU supports, at run time
//
// Notation (PyTorch's F.scaled_dot_product_attention):
//   q (B, H, N, D)   queries        k (B, H, M, D)   keys        v (B, H, M, Dv)   values
//   S = scale * q k^T + mask        (B, H, N, M), never stored whole
//   P = softmax(S) over keys        out = P v  (B, H, N, Dv)
//   lse[b, h, i] = log sum_j exp(S[b, h, i, j])   (-inf for a row whose keys are all masked)
// A row with every key masked gives out = 0 and zero gradients (PyTorch's "safe softmax").
#pragma once
#include <cstdint>
#include <string>

namespace numtrans {

// A read-only strided 4-D view (B, H, rows, cols) in elements, like a NumPy array.
// Strides may be zero (broadcast) or negative; nothing is copied.
template <typename T>
struct View4 {
  const T* data = nullptr;
  std::int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 1;  // strides of b, h, row, col
  const T* row(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return data + (b * s0 + h * s1 + i * s2);
  }
  T at(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) const {
    return row(b, h, i)[j * s3];
  }
};

enum class MaskKind : int { none = 0, boolean = 1, additive = 2 };

// Everything both passes read. The mask is viewed as (B, H, N, M) with zero strides on the
// broadcast dimensions: a (B, 1, 1, M) key-padding mask costs B * M bytes, not B * H * N * M.
template <typename T>
struct AttentionProblem {
  std::int64_t B = 0, H = 0, N = 0, M = 0, D = 0, Dv = 0;
  View4<T> q, k, v;
  MaskKind mask_kind = MaskKind::none;
  View4<std::uint8_t> mask_bool;  // True (1) = may attend
  View4<T> mask_add;              // added to the scaled scores; -inf = may not attend
  bool causal = false;            // top-left aligned: query i sees keys j <= i
  T scale = T(1);

  // Is key j visible to query i under the mask and the causal rule (ignoring the additive value)?
  bool allowed(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) const {
    if (causal && j > i) return false;
    if (mask_kind == MaskKind::boolean) return mask_bool.at(b, h, i, j) != 0;
    return true;
  }
  T bias(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) const {
    return mask_kind == MaskKind::additive ? mask_add.at(b, h, i, j) : T(0);
  }
};

// A writable strided 4-D view (B, H, rows, cols) whose rows are contiguous (column stride 1):
// an output. The caller chooses the layout: C-contiguous (B, H, rows, cols), or e.g. the
// transposed view of a (B, rows, H, cols) buffer, so that merging the heads back into
// (B, rows, H * cols) afterwards needs no copy (numtrans/native/attention.py, ``out_like``).
template <typename T>
struct OutView4 {
  T* data = nullptr;
  std::int64_t s0 = 0, s1 = 0, s2 = 0;  // strides of b, h, row
  T* row(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return data + (b * s0 + h * s1 + i * s2);
  }
};
template <typename T>
OutView4<T> contiguous4(T* data, std::int64_t H, std::int64_t rows, std::int64_t cols) {
  return OutView4<T>{data, H * rows * cols, rows * cols, cols};
}

// Outputs are arrays allocated by the caller, in any layout with contiguous rows (OutView4):
//   forward:  out (B, H, N, Dv), lse (B, H, N) (C-contiguous)
//   backward: dq (B, H, N, D), dk (B, H, M, D), dv (B, H, M, Dv); every entry is written.
// The backward also reads dout (B, H, N, Dv) and out (any strides) and lse (contiguous).
template <typename T>
struct ForwardResult {
  OutView4<T> out;
  T* lse;
};
template <typename T>
struct BackwardInput {
  View4<T> dout, out;
  const T* lse;
};
template <typename T>
struct BackwardResult {
  OutView4<T> dq, dk, dv;
};

// The plain scalar version (attention_reference.cpp): short, obviously correct, slow.
template <typename T>
void attention_forward_reference(const AttentionProblem<T>& p, ForwardResult<T> r);
template <typename T>
void attention_backward_reference(const AttentionProblem<T>& p, const BackwardInput<T>& g,
                                  BackwardResult<T> r);

// The fast version, compiled once per instruction set; `isa` is "" (best this CPU supports) or a
// ceiling such as "avx2" or "baseline" (for testing the fallbacks). Returns the ISA that ran.
template <typename T>
std::string attention_forward_fast(const AttentionProblem<T>& p, ForwardResult<T> r,
                                   const std::string& isa);
template <typename T>
std::string attention_backward_fast(const AttentionProblem<T>& p, const BackwardInput<T>& g,
                                    BackwardResult<T> r, const std::string& isa);

// Instruction sets compiled into this module and usable on this CPU, best first.
std::string attention_isas();

}  // namespace numtrans

// Each instruction-set variant of the fast kernels lives in its own namespace
// (numtrans::isa_avx512, numtrans::isa_avx2, numtrans::isa_baseline): the same source file is
// compiled several times with different flags, and distinct names keep the linker from mixing
// an AVX-512 copy of a helper into code that must run on any x86-64.
#define NUMTRANS_DECLARE_ATTENTION_ISA(ns)                                                   \
  namespace numtrans {                                                                       \
  namespace ns {                                                                             \
  template <typename T>                                                                      \
  void attention_forward(const AttentionProblem<T>& p, ForwardResult<T> r);                  \
  template <typename T>                                                                      \
  void attention_backward(const AttentionProblem<T>& p, const BackwardInput<T>& g,           \
                          BackwardResult<T> r);                                              \
  }                                                                                          \
  }
