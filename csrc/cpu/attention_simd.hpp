// Lesson 2: the three tools that make the fused kernel fast, written once for every CPU.
//
// 1. Vectors. GCC and Clang let us declare `float __attribute__((vector_size(32)))`: a value of
//    8 floats that supports + - * and comparisons lane by lane. The width is fixed by the flags
//    this file is compiled with: 64 bytes with -mavx512f (16 floats), 32 with -mavx2, 16 on any
//    other CPU (SSE2 on x86-64, NEON on ARM). CMake compiles the kernels once per width and
//    attention_dispatch.cpp picks at run time, so the module still runs on any x86-64.
// 2. A polynomial exp. libm's exp is one number at a time; ours handles a whole vector:
//    exp(x) = 2^n * exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2, where exp(r) is a short
//    Taylor polynomial (7 terms for float, 13 for double: below one rounding error) and 2^n is
//    put straight into the exponent bits. No -ffast-math anywhere: -inf must stay -inf.
// 3. A register-blocked small matrix multiply. C (m x n) (+)= A (m x k) B (k x n), computed in
//    MR x (NV vectors) tiles held in registers: for each k, load NV vectors of a row of B, and for
//    each of the MR rows multiply them by one broadcast element of A. Each loaded number is used
//    MR or NV times, so the loop runs at the speed of the multiply-add units, not of the loads.
//    B must be "packed": rows contiguous, columns padded to whole vectors. A can have any strides,
//    which lets the kernels use a tile and its transpose without copying.
#pragma once
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#ifndef NUMTRANS_ISA_NS
#error "compile the attention kernels through CMake, which names the instruction set"
#endif

#if defined(__AVX512F__)
#define NUMTRANS_VEC_BYTES 64
#define NUMTRANS_GEMM_MR 8  // 32 vector registers: 8 x 2 accumulators
#elif defined(__AVX__)
#define NUMTRANS_VEC_BYTES 32
#define NUMTRANS_GEMM_MR 6  // 16 vector registers: 6 x 2 accumulators + 3 for the operands
#else
#define NUMTRANS_VEC_BYTES 16
#define NUMTRANS_GEMM_MR 4
#endif

namespace numtrans {
namespace NUMTRANS_ISA_NS {

using i64 = std::int64_t;

// ---------------------------------------------------------------------------------- vectors --
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(NUMTRANS_VEC_BYTES)));
  typedef std::uint32_t I __attribute__((vector_size(NUMTRANS_VEC_BYTES)));
  static constexpr int W = NUMTRANS_VEC_BYTES / 4;
  static constexpr int mantissa_bits = 23;
  static constexpr float round_magic = 12582912.0f;  // 1.5 * 2^23: x + magic - magic = round(x)
  static constexpr float exp_lo = -87.0f;            // exp(x) < 1.7e-38 below: return 0
  static constexpr int exp_terms = 8;                // 1 + r + ... + r^7/7!
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(NUMTRANS_VEC_BYTES)));
  typedef std::uint64_t I __attribute__((vector_size(NUMTRANS_VEC_BYTES)));
  static constexpr int W = NUMTRANS_VEC_BYTES / 8;
  static constexpr int mantissa_bits = 52;
  static constexpr double round_magic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double exp_lo = -708.0;
  static constexpr int exp_terms = 14;  // 1 + r + ... + r^13/13!
};

template <typename T>
using Vec = typename Simd<T>::V;

// memcpy is how C++ says "load these bytes as a vector" without alignment or aliasing
// assumptions; the compiler turns it into a single unaligned vector load or store.
template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T, std::size_t... I>
inline Vec<T> splat_lanes(T x, std::index_sequence<I...>) {
  return Vec<T>{((void)I, x)...};  // {x, x, ..., x}: the compiler emits one broadcast
}
template <typename T>
inline Vec<T> splat(T x) {
  return splat_lanes<T>(x, std::make_index_sequence<Simd<T>::W>{});
}
template <typename T>
inline Vec<T> vmax(Vec<T> a, Vec<T> b) {
  return a > b ? a : b;
}
inline constexpr i64 round_up(i64 x, i64 m) { return (x + m - 1) / m * m; }
inline constexpr i64 min64(i64 a, i64 b) { return a < b ? a : b; }

// exp(x) lane by lane, for x <= 0 (attention only ever needs exp(score - row maximum)).
// Lanes below exp_lo (including -inf) come out as exactly 0, so masked keys get probability 0:
// they compute garbage that a bitwise AND with the comparison mask then clears. A NaN lane
// stays NaN (all bits set), so a NaN in q, k or a mask shows in the output instead of vanishing.
template <typename T>
inline Vec<T> vexp(Vec<T> x) {
  using S = Simd<T>;
  using I = typename S::I;
  const I keep = (I)(x >= splat<T>(S::exp_lo));  // all ones where exp(x) is representable
  const Vec<T> magic = splat<T>(S::round_magic);
  const Vec<T> big = x * T(1.4426950408889634) + magic;  // x / ln 2, rounded in the low bits
  const Vec<T> n = big - magic;
  // r = x - n ln 2 in two steps (ln 2 = hi + lo) so r keeps full precision; |r| <= ln(2) / 2.
  const Vec<T> r = (x - n * T(0.693145751953125)) - n * T(1.428606820309417232e-06);
  T coef[S::exp_terms];  // 1/k!
  coef[0] = T(1);
  for (int k = 1; k < S::exp_terms; ++k) coef[k] = coef[k - 1] / T(k);
  Vec<T> p = splat<T>(coef[S::exp_terms - 1]);
  for (int k = S::exp_terms - 2; k >= 0; --k) p = p * r + coef[k];  // Horner
  // 2^n: the integer n sits in the low bits of `big`; shift it into the exponent field.
  const I n_int = (I)big - (I)magic;  // (I)v reinterprets the bits; unsigned wraps, no UB
  const I nan = (I)(x != x);
  return (Vec<T>)((((I)p + (n_int << S::mantissa_bits)) & keep) | nan);
}

// ------------------------------------------------------------------- aligned scratch memory --
// Per-thread tiles, allocated once per parallel region (never inside the loops).
template <typename T>
class Buffer {
 public:
  explicit Buffer(i64 n)
      : p_(static_cast<T*>(::operator new(sizeof(T) * static_cast<std::size_t>(n > 0 ? n : 1),
                                          std::align_val_t(64)))) {}
  ~Buffer() { ::operator delete(p_, std::align_val_t(64)); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* get() const { return p_; }

 private:
  T* p_;
};

// ------------------------------------------------------------------- the small matrix multiply --
// One register tile: C[r, c] (+)= sum_k A[r * ars + k * aks] * B[k * ldb + c] for r < MR and
// c < NV * W; only the first `ncols` columns of C are written (the rest may be padding).
template <typename T, int MR, int NV>
inline void gemm_tile(i64 kdim, const T* A, i64 ars, i64 aks, const T* B, i64 ldb, T* C,
                      i64 ldc, i64 ncols, bool accumulate) {
  constexpr int W = Simd<T>::W;
  Vec<T> acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = Vec<T>{};
  for (i64 k = 0; k < kdim; ++k) {
    Vec<T> b[NV];
    for (int c = 0; c < NV; ++c) b[c] = load(B + k * ldb + c * W);
    for (int r = 0; r < MR; ++r) {
      const Vec<T> a = splat(A[r * ars + k * aks]);
      for (int c = 0; c < NV; ++c) acc[r][c] += a * b[c];
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NV; ++c) {
      T* dst = C + r * ldc + c * W;
      const i64 n = ncols - c * W;
      if (n >= W) {
        store(dst, accumulate ? load(dst) + acc[r][c] : acc[r][c]);
      } else if (n > 0) {  // a ragged last vector: go through a small array
        for (i64 j = 0; j < n; ++j) dst[j] = accumulate ? dst[j] + acc[r][c][j] : acc[r][c][j];
      }
    }
  }
}

// Run gemm_tile with a row count known only at run time (the last, partial tile).
template <typename T, int R, int NV>
inline void gemm_tile_rows(int rows, i64 kdim, const T* A, i64 ars, i64 aks, const T* B, i64 ldb,
                           T* C, i64 ldc, i64 ncols, bool accumulate) {
  if constexpr (R > 0) {
    if (rows == R)
      gemm_tile<T, R, NV>(kdim, A, ars, aks, B, ldb, C, ldc, ncols, accumulate);
    else
      gemm_tile_rows<T, R - 1, NV>(rows, kdim, A, ars, aks, B, ldb, C, ldc, ncols, accumulate);
  }
}

// Under a causal mask a tile that straddles the diagonal needs only part of its product; `Band`
// says which part, with off = (first query) - (first key) of the tile. Key j sees query i only
// when j <= i, so (r = row, c = column, k = the summed index of C = A B):
//   rows_to_col  C = scores (row = key, column = query): C[r, c] is needed only for r <= c + off;
//                the rest is not written (mask_tile sets it to -inf, or it is multiplied by p = 0)
//   k_from_row   C row = key, k = query (dv += P^T dout, dk += dS^T q): only k >= r - off
//   k_to_row     C row = query, k = key (out += P v, dq += dS k): only k <= r + off
// The terms skipped are exact zeros (p = 0 for a masked pair), so the result is the full
// product's, bit for bit, at up to half the work on the diagonal tiles of short sequences.
struct Band {
  enum Kind { all, rows_to_col, k_from_row, k_to_row };
  Kind kind = all;
  i64 off = 0;
};

// C (m x n) (+)= A (m x k) B (k x n). B's rows hold round_up(n, W) readable columns.
// Loop order: a panel of 2 vectors of B's columns stays in L1 while every row tile passes over it.
// The k_* bands need accumulate = true (a skipped tile adds nothing).
template <typename T>
void gemm(i64 m, i64 n, i64 kdim, const T* A, i64 ars, i64 aks, const T* B, i64 ldb, T* C,
          i64 ldc, bool accumulate, Band band = {}) {
  constexpr int W = Simd<T>::W, MR = NUMTRANS_GEMM_MR, NV = 2;
  for (i64 j0 = 0; j0 < n; j0 += NV * W) {
    const i64 cols = min64(NV * W, n - j0);
    // rows_to_col: rows past (last column of this panel) + off are not needed
    const i64 m_end = band.kind == Band::rows_to_col ? min64(m, j0 + cols + band.off) : m;
    for (i64 i0 = 0; i0 < m_end; i0 += MR) {
      const int rows = static_cast<int>(min64(MR, m - i0));
      i64 k0 = 0, k1 = kdim;  // the summed range this row tile needs
      if (band.kind == Band::k_from_row) k0 = i0 - band.off > 0 ? i0 - band.off : 0;
      if (band.kind == Band::k_to_row) k1 = min64(kdim, i0 + rows + band.off);
      if (k1 <= k0) continue;
      const T* a = A + i0 * ars + k0 * aks;
      const T* b = B + k0 * ldb + j0;
      T* c = C + i0 * ldc + j0;
      if (cols > W)
        gemm_tile_rows<T, MR, 2>(rows, k1 - k0, a, ars, aks, b, ldb, c, ldc, cols, accumulate);
      else
        gemm_tile_rows<T, MR, 1>(rows, k1 - k0, a, ars, aks, b, ldb, c, ldc, cols, accumulate);
    }
  }
}

}  // namespace NUMTRANS_ISA_NS
}  // namespace numtrans
