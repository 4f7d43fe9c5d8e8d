// The int8 GEMM kernels over the packed layouts of int8_gemm.hpp, chosen at run time.
//
// Each kernel computes one micro-tile: kMR rows of A times one panel (kNR columns) of B, over one
// cache block of k-groups, and adds it into C (the first block starts from the column-sum
// offset instead of from C). The function-level `target` attribute lets one source file hold
// the AVX-512 and AVX2 variants while the rest compiles for baseline x86-64.
//   avx512_vnni  vpdpbusd: each of 16 int32 lanes gains u0*b0 + u1*b1 + u2*b2 + u3*b3;
//                24 accumulators (6 rows x 4 vectors), 4 loads + 6 broadcasts per 24 vpdpbusd.
//   avx2         vpmaddwd on bytes widened to int16 (vpmaddubsw would saturate to int16:
//                255 * 127 * 2 does not fit, so it is not exact): each int32 lane gains two
//                products, and a final horizontal add joins the two halves of each k-group.
//   scalar       the same loops in plain C++: the reference for the packed layout.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/int8_gemm.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define NUMTRANS_INT8_X86 1
#endif

namespace numtrans::int8 {
namespace {

// One micro-tile. a: packed A at (tile, first group); b: packed B at (panel, first group);
// c: C at (first row of the tile, first column of the panel), row stride ldc; rows / cols: how
// many of the tile's kMR rows and kNR columns are real; offset: the panel's column offsets.
using TileFn = void (*)(const std::uint8_t* a, const std::int8_t* b, i64 ngroups, std::int32_t* c,
                        i64 ldc, i64 rows, i64 cols, const std::int32_t* offset, bool first);

void tile_scalar(const std::uint8_t* a, const std::int8_t* b, i64 ngroups, std::int32_t* c,
                 i64 ldc, i64 rows, i64 cols, const std::int32_t* offset, bool first) {
  for (i64 r = 0; r < rows; ++r)
    for (i64 n = 0; n < cols; ++n) {
      // unsigned arithmetic: wraps modulo 2^32 like the vector units, never undefined
      std::uint32_t s = static_cast<std::uint32_t>(first ? offset[n] : c[r * ldc + n]);
      for (i64 g = 0; g < ngroups; ++g)
        for (i64 j = 0; j < 4; ++j)
          s += static_cast<std::uint32_t>(a[(g * kMR + r) * 4 + j] * b[(g * kNR + n) * 4 + j]);
      c[r * ldc + n] = static_cast<std::int32_t>(s);
    }
}

#ifdef NUMTRANS_INT8_X86
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tile_vnni(
    const std::uint8_t* a, const std::int8_t* b, i64 ngroups, std::int32_t* c, i64 ldc, i64 rows,
    i64 cols, const std::int32_t* offset, bool first) {
  __m512i acc[kMR][4];
#pragma GCC unroll 6
  for (i64 r = 0; r < kMR; ++r)
#pragma GCC unroll 4
    for (i64 v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_si512();
  for (i64 g = 0; g < ngroups; ++g) {
    const std::int8_t* bg = b + g * kNR * 4;
    const __m512i b0 = _mm512_loadu_si512(bg), b1 = _mm512_loadu_si512(bg + 64);
    const __m512i b2 = _mm512_loadu_si512(bg + 128), b3 = _mm512_loadu_si512(bg + 192);
    const std::uint8_t* ag = a + g * kMR * 4;
#pragma GCC unroll 6
    for (i64 r = 0; r < kMR; ++r) {
      std::int32_t four;  // the 4 bytes u[r, 4g..4g+3], broadcast to all 16 lanes
      std::memcpy(&four, ag + r * 4, 4);
      const __m512i av = _mm512_set1_epi32(four);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], av, b2);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], av, b3);
    }
  }
#pragma GCC unroll 6
  for (i64 r = 0; r < kMR; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 4
    for (i64 v = 0; v < 4; ++v) {
      const i64 n0 = v * 16, left = cols - n0;
      if (left <= 0) break;
      const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      std::int32_t* dst = c + r * ldc + n0;
      const __m512i base =
          first ? _mm512_loadu_si512(offset + n0) : _mm512_maskz_loadu_epi32(m, dst);
      _mm512_mask_storeu_epi32(dst, m, _mm512_add_epi32(base, acc[r][v]));
    }
  }
}

__attribute__((target("avx2"))) void tile_avx2(const std::uint8_t* a, const std::int8_t* b,
                                               i64 ngroups, std::int32_t* c, i64 ldc, i64 rows,
                                               i64 cols, const std::int32_t* offset, bool first) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (i64 r0 = 0; r0 < rows; r0 += 2)   // 2 rows ...
    for (i64 c0 = 0; c0 < cols; c0 += 16) {  // ... x 16 columns: 8 accumulators
      // acc[rr][q]: columns c0 + 4q .. c0 + 4q + 3, two int32 lanes per column
      __m256i acc[2][4];
      for (auto& row : acc)
        for (auto& x : row) x = _mm256_setzero_si256();
      for (i64 g = 0; g < ngroups; ++g) {
        const std::int8_t* bg = b + (g * kNR + c0) * 4;
        __m256i bw[4];  // 16 bytes (4 columns x 4 k) each, widened to int16
        for (int q = 0; q < 4; ++q)
          bw[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bg + 16 * q)));
        for (int rr = 0; rr < 2; ++rr) {
          std::int32_t four;
          std::memcpy(&four, a + (g * kMR + r0 + rr) * 4, 4);
          // u0..u3 as int16, repeated 4 times: one copy per column of a bw vector
          const __m256i av = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(four)));
          for (int q = 0; q < 4; ++q)
            acc[rr][q] = _mm256_add_epi32(acc[rr][q], _mm256_madd_epi16(av, bw[q]));
        }
      }
      for (int rr = 0; rr < 2 && r0 + rr < rows; ++rr)
        for (int h = 0; h < 2; ++h) {
          const i64 n0 = c0 + 8 * h, left = cols - n0;
          if (left <= 0) break;
          // hadd gives columns (0 1 4 5 | 2 3 6 7); the permute puts them in order
          __m256i s = _mm256_hadd_epi32(acc[rr][2 * h], acc[rr][2 * h + 1]);
          s = _mm256_permute4x64_epi64(s, _MM_SHUFFLE(3, 1, 2, 0));
          const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<i64>(left, 8))), lane);
          std::int32_t* dst = c + (r0 + rr) * ldc + n0;
          const __m256i base =
              first ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(offset + n0))
                    : _mm256_maskload_epi32(dst, m);
          _mm256_maskstore_epi32(dst, m, _mm256_add_epi32(base, s));
        }
    }
}

bool has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

// One row of x -> u = clip(rint(x / scale), -127, 127) + 128 as bytes; returns the scale. The
// same formula as the scalar version, 16 floats at a time, and bit-identical to it (IEEE
// division, round half to even, the same clip).
__attribute__((target("avx512f,avx512bw,avx512vl"))) float quantize_row_avx512(const float* x,
                                                                              i64 K,
                                                                              std::uint8_t* u) {
  __m512 m = _mm512_setzero_ps();
  for (i64 k = 0; k < K; k += 16) {
    const __mmask16 mk = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k)));
  }
  const float amax = _mm512_reduce_max_ps(m);
  const float scale = amax > 0 ? amax / 127.0f : 1.0f;
  const __m512 s = _mm512_set1_ps(scale), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i shift = _mm512_set1_epi32(128);
  for (i64 k = 0; k < K; k += 16) {
    const __mmask16 mk = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(mk, x + k), s);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), shift);  // 1..255
    _mm512_mask_cvtepi32_storeu_epi8(u + k, mk, q);                     // the low byte of each
  }
  return scale;
}
#endif  // NUMTRANS_INT8_X86

float quantize_row_scalar(const float* x, i64 K, std::uint8_t* u) {
  float amax = 0.0f;
  for (i64 k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  const float scale = amax > 0 ? amax / 127.0f : 1.0f;
  for (i64 k = 0; k < K; ++k) {
    const float q = std::min(127.0f, std::max(-127.0f, std::nearbyint(x[k] / scale)));
    u[k] = static_cast<std::uint8_t>(static_cast<int>(q) + 128);
  }
  return scale;
}

TileFn tile_for(const std::string& isa) {
#ifdef NUMTRANS_INT8_X86
  if (isa == "avx512_vnni") return tile_vnni;
  if (isa == "avx2") return tile_avx2;
#endif
  if (isa == "scalar") return tile_scalar;
  throw std::invalid_argument("int8 GEMM: instruction set '" + isa + "' is not usable here");
}

}  // namespace

std::vector<std::string> usable_isas() {
  std::vector<std::string> out;
#ifdef NUMTRANS_INT8_X86
  if (has_vnni()) out.push_back("avx512_vnni");
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) out.push_back("avx2");
#endif
  out.push_back("scalar");
  return out;
}

void gemm_packed(const std::string& isa, const PackedA& a, const PackedB& b, std::int32_t* c) {
  const TileFn tile = tile_for(isa);
  const i64 M = a.M, N = b.N, G = groups(b.K), T = tiles(M), P = panels(N);
  if (G == 0) {  // K = 0: an empty sum
    std::memset(c, 0, static_cast<size_t>(M * N) * sizeof(std::int32_t));
    return;
  }
  // Panels are independent (each thread owns its columns of C); inside one, the loop over row
  // tiles is innermost so the 16 KiB block of the panel is reused from L1 by every tile.
#pragma omp parallel for schedule(static)
  for (i64 p = 0; p < P; ++p) {
    const i64 n0 = p * kNR, cols = std::min(kNR, N - n0);
    for (i64 g0 = 0; g0 < G; g0 += kKC) {
      const i64 gn = std::min(kKC, G - g0);
      const std::int8_t* bp = b.data + (p * G + g0) * kNR * 4;
      for (i64 t = 0; t < T; ++t)
        tile(a.data + (t * G + g0) * kMR * 4, bp, gn, c + t * kMR * N + n0, N,
             std::min(kMR, M - t * kMR), cols, b.offset + n0, g0 == 0);
    }
  }
}

void quantize_pack_a(const std::string& isa, const float* x, i64 M, i64 K, std::uint8_t* out,
                     float* scale) {
  const i64 G = groups(K);
  std::memset(out, 0, static_cast<size_t>(tiles(M) * G * kMR * 4));
  bool wide = false;
#ifdef NUMTRANS_INT8_X86
  wide = isa == "avx512_vnni";
#endif
#pragma omp parallel
  {
    std::vector<std::uint8_t> u(static_cast<size_t>(G * 4), 0);  // one row, padded to whole groups
#pragma omp for schedule(static)
    for (i64 i = 0; i < M; ++i) {
#ifdef NUMTRANS_INT8_X86
      if (wide)
        scale[i] = quantize_row_avx512(x + i * K, K, u.data());
      else
#endif
        scale[i] = quantize_row_scalar(x + i * K, K, u.data());
      // scatter the row's k-groups into its tile: 4 bytes each, kMR * 4 bytes apart
      std::uint8_t* tile = out + (i / kMR) * G * kMR * 4 + (i % kMR) * 4;
      for (i64 g = 0; g < G; ++g) std::memcpy(tile + g * kMR * 4, u.data() + g * 4, 4);
    }
  }
}

}  // namespace numtrans::int8
