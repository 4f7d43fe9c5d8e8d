// Helpers shared by the fast forward and backward kernels: masking one score tile, and when to
// use threads.
//
// The tiles are transposed: St[jj, ii] holds the score of key j0 + jj for query i0 + ii. The
// mask is a strided (B, H, N, M) view whose broadcast dimensions have stride 0, so a key-padding
// mask of shape (B, 1, 1, M) costs one test per key, not one per score.
#pragma once
#include <limits>

#include "cpu/attention.hpp"
#include "cpu/attention_simd.hpp"

namespace numtrans {
namespace NUMTRANS_ISA_NS {

// Tile edges: 128 keys by 128 queries (64 for short sequences). Tried on AVX2: 120 x 96 tiles
// (no ragged register tile with MR = 6) and MR = 4 were no faster, within 5 % noise.
constexpr i64 kTileK = 128;
constexpr i64 kTileQ = 128;
constexpr i64 kTileQSmall = 64;

// Waking a second thread costs microseconds (and, on a loaded machine, up to a scheduler time
// slice): below about 4 million multiply-adds one thread finishes first.
template <typename T>
inline bool worth_threads(const AttentionProblem<T>& p) {
  return double(p.B) * double(p.H) * double(p.N) * double(p.M) * double(p.D + p.Dv) >= 4e6;
}

// Apply the mask and the causal rule to St (cols keys x rows queries, leading dimension ld).
template <typename T>
inline void mask_tile(const AttentionProblem<T>& p, i64 b, i64 h, i64 i0, i64 rows, i64 j0,
                      i64 cols, T* st, i64 ld) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for (i64 jj = 0; jj < cols; ++jj) {
    T* s = st + jj * ld;
    const i64 j = j0 + jj;
    if (p.mask_kind == MaskKind::boolean) {
      const auto& mk = p.mask_bool;
      const std::uint8_t* mcol = mk.data + (b * mk.s0 + h * mk.s1 + j * mk.s3 + i0 * mk.s2);
      if (mk.s2 == 0) {  // the same for every query (a key-padding mask): one test per key
        if (!mcol[0])
          for (i64 ii = 0; ii < rows; ++ii) s[ii] = neg_inf;
      } else {
        for (i64 ii = 0; ii < rows; ++ii) s[ii] = mcol[ii * mk.s2] ? s[ii] : neg_inf;
      }
    } else if (p.mask_kind == MaskKind::additive) {
      const auto& mk = p.mask_add;
      const T* mcol = mk.data + (b * mk.s0 + h * mk.s1 + j * mk.s3 + i0 * mk.s2);
      for (i64 ii = 0; ii < rows; ++ii) s[ii] += mcol[ii * mk.s2];
    }
    if (p.causal && j > i0)  // query i0 + ii sees key j only when j <= i0 + ii
      for (i64 ii = 0; ii < min64(rows, j - i0); ++ii) s[ii] = neg_inf;
  }
}

}  // namespace NUMTRANS_ISA_NS
}  // namespace numtrans
