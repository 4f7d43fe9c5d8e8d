// int8 x int8 -> int32 GEMM: the packed layouts shared by every kernel (int8_kernels.cpp) and
// the bindings (int8_gemm.cpp).
//
// C (M, N) = A (M, K) @ B (K, N). The weight B is packed once, when a layer is quantized or
// loaded; the activation A is packed on every call (O(M K) work against the GEMM's O(M K N)).
//
// Packed B ("panels"): columns in panels of kNR = 64 (four 16-lane AVX-512 vectors), rows of B
// in groups of 4 (the 4 products one vpdpbusd lane sums). Byte (p, g, c, j) holds B[4g + j,
// 64p + c], zero outside B:
//     data[((p * G + g) * kNR + c) * 4 + j],   G = ceil(K / 4),  P = ceil(N / 64)
// so the kernel reads a panel front to back, 256 bytes per k-group (4 vector loads).
//
// Packed A ("row tiles"): rows in tiles of kMR = 6, each value shifted to unsigned, u = a + 128
// (vpdpbusd multiplies unsigned by signed bytes). Byte (t, g, r, j) holds u[6t + r, 4g + j]:
//     data[((t * G + g) * kMR + r) * 4 + j]
// so the 4 bytes a broadcast needs are adjacent, and a tile's k-groups follow one another.
//
// The shift adds 128 * sum_k B[k, n] to every C[i, n]; `offset[n] = -128 * sum_k B[k, n]`,
// computed at packing time, takes it away again (the "column-sum correction"). All sums wrap
// modulo 2^32, so C is exact whenever the true result fits in int32 (K <= 131072).
//
// Cache blocking: a panel's k-groups are walked in blocks of kKC = 64 (64 x 256 bytes = 16 KiB,
// which stays in the 48 KiB L1 while every row tile of A streams past it); the C tile is
// accumulated block by block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace numtrans::int8 {

using i64 = std::int64_t;
constexpr i64 kMR = 6;   // rows per tile of A: 6 x 4 = 24 of the 32 zmm registers accumulate
constexpr i64 kNR = 64;  // columns per panel of B
constexpr i64 kKC = 64;  // k-groups per cache block

inline i64 groups(i64 K) { return (K + 3) / 4; }
inline i64 panels(i64 N) { return (N + kNR - 1) / kNR; }
inline i64 tiles(i64 M) { return (M + kMR - 1) / kMR; }

struct PackedB {
  const std::int8_t* data;
  const std::int32_t* offset;  // (P * kNR,): -128 * column sums
  i64 K, N;
};

struct PackedA {
  const std::uint8_t* data;
  i64 M, K;
};

// Kernels usable on this CPU, best first: some of "avx512_vnni", "avx2", and "scalar".
std::vector<std::string> usable_isas();

// C = A @ B with the named kernel (one of usable_isas()); C is (M, N), row-major.
void gemm_packed(const std::string& isa, const PackedA& a, const PackedB& b, std::int32_t* c);

// Dynamic per-row quantization, written straight into packed A (tiles(M) * G * kMR * 4 bytes):
// scale[i] = max_k |x[i, k]| / 127 (1 for an all-zero row), q = clip(rint(x / scale), -127, 127).
void quantize_pack_a(const std::string& isa, const float* x, i64 M, i64 K, std::uint8_t* out,
                     float* scale);

}  // namespace numtrans::int8
