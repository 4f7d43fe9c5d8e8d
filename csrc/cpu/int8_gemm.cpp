// Exact int8 x int8 -> int32 matrix multiply, C (M, N) = A (M, K) @ B (K, N).
//
// Three kernels, chosen at run time (the same idea as attention_dispatch.cpp, but with the
// function-level `target` attribute so one source file holds every variant):
//   avx512_vnni  vpdpbusd: 16 lanes x 4 products (unsigned 8-bit x signed 8-bit) -> int32.
//                A is signed, so it is shifted by +128 into [0, 255] and the extra
//                128 * sum_k B[k, n] is subtracted at the end (the "column-sum correction").
//   avx2         vpmaddwd on int16: 8 lanes x 2 products -> int32. (vpmaddubsw would be faster
//                but it saturates to int16: 255 * -128 * 2 does not fit, so it is not exact.)
//   scalar       three plain loops: the reference.
// B is repacked once per call so that the k-values a lane needs are adjacent in memory
// (groups of 4 for VNNI, 2 for vpmaddwd), padded with zeros to whole groups and whole vectors.
//
// Exactness: every intermediate sum wraps modulo 2^32 in the vector units (they never
// saturate), so the final C is exact whenever the true result fits in int32, which holds for
// K <= 131072 (|C| <= K * 128 * 128). The Python wrapper checks that bound.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define NUMTRANS_INT8_X86 1
#endif

namespace py = pybind11;

namespace {

using i64 = std::int64_t;

// ---------------------------------------------------------------------------- scalar ----
void gemm_scalar(const std::int8_t* a, const std::int8_t* b, std::int32_t* c, i64 M, i64 K,
                 i64 N) {
#pragma omp parallel for schedule(static)
  for (i64 i = 0; i < M; ++i) {
    std::uint32_t* row = reinterpret_cast<std::uint32_t*>(c + i * N);  // unsigned: wraps, no UB
    for (i64 j = 0; j < N; ++j) row[j] = 0;
    for (i64 k = 0; k < K; ++k) {
      const std::int32_t av = a[i * K + k];
      const std::int8_t* brow = b + k * N;
      for (i64 j = 0; j < N; ++j) row[j] += static_cast<std::uint32_t>(av * brow[j]);
    }
  }
}

#ifdef NUMTRANS_INT8_X86
// ---------------------------------------------------------------- AVX-512 VNNI ----
// Packed B: for k-group g (4 rows of B) and column n, the 4 bytes B[4g..4g+3, n] are adjacent;
// columns are padded to Np (a multiple of 16) so every 64-byte load is a whole vector.
constexpr i64 kRows = 4;  // rows of A per micro-tile
constexpr i64 kVecs = 4;  // 16-column vectors per micro-tile: 4 x 4 = 16 accumulators

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void gemm_vnni(
    const std::int8_t* a, const std::int8_t* b, std::int32_t* c, i64 M, i64 K, i64 N) {
  const i64 G = (K + 3) / 4, Np = (N + 15) / 16 * 16;
  std::vector<std::int8_t> bp(static_cast<size_t>(G * Np * 4), 0);
  std::vector<std::int32_t> colsum(static_cast<size_t>(Np), 0);
  for (i64 k = 0; k < K; ++k)
    for (i64 n = 0; n < N; ++n) {
      bp[(k / 4) * Np * 4 + n * 4 + k % 4] = b[k * N + n];
      colsum[n] += b[k * N + n];
    }
  // A shifted to unsigned, K padded to whole groups (the padding meets zero rows of B).
  const i64 Kp = G * 4;
  std::vector<std::uint8_t> au(static_cast<size_t>(M * Kp), 0);
  for (i64 i = 0; i < M; ++i)
    for (i64 k = 0; k < K; ++k) au[i * Kp + k] = static_cast<std::uint8_t>(a[i * K + k] + 128);
  const std::uint8_t* ap = au.data();
  const std::int8_t* bpp = bp.data();
  const std::int32_t* cs = colsum.data();
  const i64 row_tiles = (M + kRows - 1) / kRows, col_tiles = (Np / 16 + kVecs - 1) / kVecs;

#pragma omp parallel for collapse(2) schedule(static)
  for (i64 rt = 0; rt < row_tiles; ++rt)
    for (i64 ct = 0; ct < col_tiles; ++ct) {
      const i64 i0 = rt * kRows, rows = std::min(kRows, M - i0);
      const i64 v0 = ct * kVecs, vecs = std::min(kVecs, Np / 16 - v0);
      __m512i acc[kRows][kVecs];
      for (i64 r = 0; r < kRows; ++r)
        for (i64 v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_si512();
      for (i64 g = 0; g < G; ++g) {
        const std::int8_t* bg = bpp + g * Np * 4 + v0 * 64;
        __m512i bv[kVecs];
        for (i64 v = 0; v < vecs; ++v) bv[v] = _mm512_loadu_si512(bg + v * 64);
        for (i64 r = 0; r < rows; ++r) {
          std::int32_t four;  // the 4 bytes A[i, 4g..4g+3], broadcast to all 16 lanes
          std::memcpy(&four, ap + (i0 + r) * Kp + g * 4, 4);
          const __m512i av = _mm512_set1_epi32(four);
          for (i64 v = 0; v < vecs; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, bv[v]);
        }
      }
      for (i64 r = 0; r < rows; ++r)
        for (i64 v = 0; v < vecs; ++v) {
          const i64 n0 = (v0 + v) * 16;
          const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(cs + n0), 7);  // 128 * sum
          const __m512i out = _mm512_sub_epi32(acc[r][v], corr);
          const i64 left = N - n0;
          const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
          _mm512_mask_storeu_epi32(c + (i0 + r) * N + n0, m, out);
        }
    }
}

// ------------------------------------------------------------------------- AVX2 ----
// Packed B as int16: for k-pair p and column n, B[2p, n] and B[2p+1, n] are adjacent.
__attribute__((target("avx2"))) void gemm_avx2(const std::int8_t* a, const std::int8_t* b,
                                               std::int32_t* c, i64 M, i64 K, i64 N) {
  const i64 P = (K + 1) / 2, Np = (N + 7) / 8 * 8, Kp = P * 2;
  std::vector<std::int16_t> bp(static_cast<size_t>(P * Np * 2), 0);
  for (i64 k = 0; k < K; ++k)
    for (i64 n = 0; n < N; ++n) bp[(k / 2) * Np * 2 + n * 2 + k % 2] = b[k * N + n];
  std::vector<std::int16_t> aw(static_cast<size_t>(M * Kp), 0);
  for (i64 i = 0; i < M; ++i)
    for (i64 k = 0; k < K; ++k) aw[i * Kp + k] = a[i * K + k];
  const std::int16_t* ap = aw.data();
  const std::int16_t* bpp = bp.data();
  const i64 row_tiles = (M + kRows - 1) / kRows, col_tiles = (Np / 8 + kVecs - 1) / kVecs;

#pragma omp parallel for collapse(2) schedule(static)
  for (i64 rt = 0; rt < row_tiles; ++rt)
    for (i64 ct = 0; ct < col_tiles; ++ct) {
      const i64 i0 = rt * kRows, rows = std::min(kRows, M - i0);
      const i64 v0 = ct * kVecs, vecs = std::min(kVecs, Np / 8 - v0);
      __m256i acc[kRows][kVecs];
      for (i64 r = 0; r < kRows; ++r)
        for (i64 v = 0; v < kVecs; ++v) acc[r][v] = _mm256_setzero_si256();
      for (i64 p = 0; p < P; ++p) {
        const std::int16_t* bg = bpp + p * Np * 2 + v0 * 16;
        __m256i bv[kVecs];
        for (i64 v = 0; v < vecs; ++v)
          bv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg + v * 16));
        for (i64 r = 0; r < rows; ++r) {
          std::int32_t two;  // A[i, 2p] and A[i, 2p+1] as two int16, broadcast to 8 lanes
          std::memcpy(&two, ap + (i0 + r) * Kp + p * 2, 4);
          const __m256i av = _mm256_set1_epi32(two);
          for (i64 v = 0; v < vecs; ++v)
            acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(av, bv[v]));
        }
      }
      for (i64 r = 0; r < rows; ++r)
        for (i64 v = 0; v < vecs; ++v) {
          const i64 n0 = (v0 + v) * 8;
          alignas(32) std::int32_t tmp[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[r][v]);
          const i64 left = std::min<i64>(8, N - n0);
          std::memcpy(c + (i0 + r) * N + n0, tmp, static_cast<size_t>(left) * 4);
        }
    }
}

bool has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#endif  // NUMTRANS_INT8_X86

// Usable kernels on this CPU, best first.
std::vector<std::string> int8_isas() {
  std::vector<std::string> out;
#ifdef NUMTRANS_INT8_X86
  if (has_vnni()) out.push_back("avx512_vnni");
  if (has_avx2()) out.push_back("avx2");
#endif
  out.push_back("scalar");
  return out;
}

using CInt8 = py::array_t<std::int8_t, py::array::c_style>;

// Returns (C, isa used). isa "" = the best usable one; otherwise that one (an error if unusable).
py::tuple int8_matmul(CInt8 a, CInt8 b, const std::string& isa) {
  if (a.ndim() != 2 || b.ndim() != 2) throw std::invalid_argument("int8_matmul: expected 2-D");
  const i64 M = a.shape(0), K = a.shape(1), N = b.shape(1);
  if (b.shape(0) != K) throw std::invalid_argument("int8_matmul: inner dimensions differ");
  const std::vector<std::string> ok = int8_isas();
  std::string use = isa.empty() ? ok.front() : isa;
  bool found = false;
  for (const auto& name : ok) found = found || name == use;
  if (!found)
    throw std::invalid_argument("int8_matmul: instruction set '" + use +
                                "' is not usable here (usable: avx512_vnni, avx2, scalar as "
                                "the CPU allows)");
  py::array_t<std::int32_t> c({M, N});
  const std::int8_t* pa = a.data();
  const std::int8_t* pb = b.data();
  std::int32_t* pc = c.mutable_data();
  {
    py::gil_scoped_release release;
    if (M > 0 && N > 0) {
      if (K == 0) {
        std::memset(pc, 0, static_cast<size_t>(M * N) * 4);
      }
#ifdef NUMTRANS_INT8_X86
      else if (use == "avx512_vnni") {
        gemm_vnni(pa, pb, pc, M, K, N);
      } else if (use == "avx2") {
        gemm_avx2(pa, pb, pc, M, K, N);
      }
#endif
      else {
        gemm_scalar(pa, pb, pc, M, K, N);
      }
    }
  }
  return py::make_tuple(c, use);
}

}  // namespace

void register_int8(py::module_& m) {
  m.def("int8_matmul", &int8_matmul, py::arg("a"), py::arg("b"), py::arg("isa") = "",
        "Exact int8 (M,K) @ int8 (K,N) -> (int32 (M,N), isa used).");
  m.def("int8_isas", &int8_isas, "int8 GEMM kernels usable on this CPU, best first.");
}
