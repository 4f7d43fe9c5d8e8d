// The building blocks of the CUDA attention kernels: tile shapes, loading a tile into shared
// memory, the two small matrix products, masking and the reductions across a row of lanes.
//
// How a thread block is organised (the same in every kernel):
//
//   4 warps = 128 threads. Each warp owns 4 * TM rows of the block's "row" tile (queries in
//   the forward), and inside a warp lane = 8 * rg + cg: row group rg (0..3) owns TM consecutive
//   rows, column group cg (0..7) owns the columns cg, cg + 8, cg + 16, ... of the "column" tile
//   (keys in the forward). A thread therefore holds a TM x TN block of scores in registers,
//   and the 8 lanes that share a row are 8 neighbouring lanes: reductions over a row (its max,
//   its sum) take three __shfl_xor_sync steps and never leave the warp. This is FlashAttention-2's
//   rule "split the queries across warps": no two warps ever need each other's statistics.
//
// The two products every kernel is made of:
//
//   dot_tile         S[i][j] = sum_d A[i][d] B[j][d]      (q k^T: both operands row-major)
//   accumulate_tile  O[i][c] += sum_j P[j][i] V[j][c]     (P v: P stored transposed, per warp)
//
// Both read shared memory 16 bytes at a time (float4 / double2). Rows of a tile are stored with
// a leading dimension of DP + VW elements (DP = padded head dim, VW = elements per 16 bytes),
// i.e. an odd number of 16-byte units: the 8 lanes of a quarter-warp that read 8 consecutive
// rows then hit 8 different groups of banks, so the loads are free of bank conflicts. Lanes
// with the same rg read the same address (a broadcast).
//
// Registers are the scarce resource: a thread keeps its TM x TN scores and its TM x DP/8 slice of
// the output. The tables below keep the accumulators to about 50-130 32-bit registers (the
// compiler needs about as many again for operands and addresses); the element type double takes
// twice the registers per number, hence smaller tiles.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/attention.cuh"

namespace numtrans {
namespace gpu {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;

// ------------------------------------------------------------------------------ tile shapes --
// tm rows per thread (the block's row tile is 16 tm), tn columns per lane (column tile 8 tn).
struct TileShape {
  int tm, tn;
};

// The padded head dim: 32, 64, 128 or 256 (0 if too large). Smaller head dims are zero-padded:
// the padding costs arithmetic (D = 65 runs like 128) but keeps every loop bound a constant.
constexpr int padded_head_dim(int d) {
  return d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : d <= 256 ? 256 : 0;
}

// Forward: tm query rows per thread, tn keys per lane. (float32, head dim 64: 64 x 64 tiles, a
// thread holds 4 x 8 scores and a 4 x 8 slice of O. 8 x 8 per thread needs a third fewer
// shared-memory reads per multiply-add, but over 200 registers: it spilled, and fits fewer blocks.)
constexpr TileShape forward_shape(int bytes, int dp) {
  if (bytes == 4) return dp <= 64 ? TileShape{4, 8} : dp == 128 ? TileShape{4, 4} : TileShape{2, 4};
  return dp == 32 ? TileShape{4, 8} : dp == 64 ? TileShape{4, 4} : dp == 128 ? TileShape{2, 4}
                                                                             : TileShape{1, 2};
}
// Backward dK/dV: tm keys per thread, tn queries per lane (tn even: the dQ step splits the
// query tile into 16 groups of rows).
constexpr TileShape backward_kv_shape(int bytes, int dp) {
  if (bytes == 4) return dp <= 64 ? TileShape{4, 8} : dp == 128 ? TileShape{2, 4} : TileShape{1, 4};
  return dp == 32 ? TileShape{4, 4} : dp == 64 ? TileShape{2, 4} : dp == 128 ? TileShape{1, 4}
                                                                             : TileShape{1, 2};
}
// Deterministic dQ: tm query rows per thread, tn keys per lane.
constexpr TileShape backward_q_shape(int bytes, int dp) {
  if (bytes == 4) return dp <= 64 ? TileShape{4, 8} : dp == 128 ? TileShape{4, 4} : TileShape{2, 4};
  return dp == 32 ? TileShape{4, 4} : dp == 64 ? TileShape{2, 4} : dp == 128 ? TileShape{1, 4}
                                                                             : TileShape{1, 2};
}

// Shared memory per block, in bytes (see the layouts at the top of each kernel).
constexpr int forward_smem(int bytes, int dp) {
  const int vw = 16 / bytes, tm = forward_shape(bytes, dp).tm, tn = forward_shape(bytes, dp).tn;
  return bytes * ((16 * tm + 2 * 8 * tn) * (dp + vw) + kWarps * 8 * tn * (4 * tm + vw));
}
constexpr int backward_kv_smem(int bytes, int dp) {
  const int vw = 16 / bytes;
  const int tk = backward_kv_shape(bytes, dp).tm, tn = backward_kv_shape(bytes, dp).tn;
  return bytes * (2 * 16 * tk * (dp + vw) + 2 * 8 * tn * (dp + vw) +
                  kWarps * 8 * tn * (4 * tk + vw) + 16 * tk * (8 * tn + vw) + 2 * 8 * tn);
}
constexpr int backward_q_smem(int bytes, int dp) {
  const int vw = 16 / bytes, tm = backward_q_shape(bytes, dp).tm, tn = backward_q_shape(bytes, dp).tn;
  return bytes * (2 * 16 * tm * (dp + vw) + 2 * 8 * tn * (dp + vw) + kWarps * 8 * tn * (4 * tm + vw));
}

// How many blocks of a kernel should share a multiprocessor: as many as its shared memory allows
// on a Hopper GPU (228 KB per multiprocessor, 1 KB of it reserved per block), at most 3. This goes
// into __launch_bounds__, which makes the compiler keep to 65536 / (128 x blocks) registers per
// thread (170 for 3 blocks): without it, it happily uses up to 255 and fits only 2 blocks.
constexpr int blocks_per_sm(int smem_bytes) {
  const int fit = 228 * 1024 / (smem_bytes + 1024);
  return fit < 1 ? 1 : fit > 3 ? 3 : fit;
}

// Every configuration must fit the smallest opt-in limit of the supported GPUs (A100: 163 KB).
constexpr int kSmemBudget = 160 * 1024;
constexpr bool all_fit() {
  for (int bytes = 4; bytes <= 8; bytes += 4)
    for (int dp = 32; dp <= kMaxHeadDim; dp *= 2)
      if (forward_smem(bytes, dp) > kSmemBudget || backward_kv_smem(bytes, dp) > kSmemBudget ||
          backward_q_smem(bytes, dp) > kSmemBudget)
        return false;
  return true;
}
static_assert(all_fit(), "a tile configuration needs more shared memory than an A100 offers");

// ------------------------------------------------------------------------- small helpers ----
// Overloads so that one template serves float and double (exp2f vs exp2, ...).
__device__ __forceinline__ float texp2(float x) { return exp2f(x); }
__device__ __forceinline__ double texp2(double x) { return exp2(x); }
__device__ __forceinline__ float tlog(float x) { return logf(x); }
__device__ __forceinline__ double tlog(double x) { return log(x); }
__device__ __forceinline__ float tmax(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double tmax(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float tfma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double tfma(double a, double b, double c) { return fma(a, b, c); }

template <typename T>
__device__ __forceinline__ T neg_inf() {
  return T(-INFINITY);
}

// 16-byte loads and stores (one LDS.128 / LDG.128 instruction); p must be 16-byte aligned.
__device__ __forceinline__ void ld16(const float* p, float (&r)[4]) {
  const float4 t = *reinterpret_cast<const float4*>(p);
  r[0] = t.x, r[1] = t.y, r[2] = t.z, r[3] = t.w;
}
__device__ __forceinline__ void ld16(const double* p, double (&r)[2]) {
  const double2 t = *reinterpret_cast<const double2*>(p);
  r[0] = t.x, r[1] = t.y;
}
__device__ __forceinline__ void st16(float* p, const float (&r)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(r[0], r[1], r[2], r[3]);
}
__device__ __forceinline__ void st16(double* p, const double (&r)[2]) {
  *reinterpret_cast<double2*>(p) = make_double2(r[0], r[1]);
}

// N consecutive elements, as few loads as their alignment allows (p aligned to N elements, or
// to 16 bytes when N elements are more than 16 bytes).
template <typename T, int N>
__device__ __forceinline__ void ld_n(const T* p, T (&r)[N]) {
  constexpr int VW = 16 / sizeof(T);
  if constexpr (N % VW == 0) {
#pragma unroll
    for (int c = 0; c < N / VW; ++c) {
      T t[VW];
      ld16(p + c * VW, t);
#pragma unroll
      for (int e = 0; e < VW; ++e) r[c * VW + e] = t[e];
    }
  } else if constexpr (sizeof(T) == 4 && N == 2) {
    const float2 t = *reinterpret_cast<const float2*>(p);
    r[0] = t.x, r[1] = t.y;
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) r[e] = p[e];
  }
}

// Reductions over the 8 lanes of a row group (lanes 8 rg .. 8 rg + 7): butterfly over the low
// three bits of the lane index. Every lane ends with the result, and the order of the
// operations is fixed, so the result is the same on every run.
template <typename T>
__device__ __forceinline__ T group8_max(T x) {
#pragma unroll
  for (int o = 1; o < 8; o <<= 1) x = tmax(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
template <typename T>
__device__ __forceinline__ T group8_sum(T x) {
#pragma unroll
  for (int o = 1; o < 8; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// ------------------------------------------------------------------------ kernel arguments --
// The scores live in one of two units (chosen once per call, see attention_forward.cu):
//   no additive mask: x = q.k * (scale * log2 e), so that exp(s - m) = exp2(x - m): the log2(e)
//                     is folded into the scale and each probability costs one exp2;
//   additive mask:    x = q.k * scale + mask in natural units, exp(s - m) = exp2((x - m) log2 e).
//                     A mask value such as -3.4e38 (finfo.min) would overflow to -inf if it were
//                     multiplied by log2(e) first, and a row made only of such keys would then look
//                     fully masked, where PyTorch and the NumPy reference see an ordinary row.
// Hence c multiplies q.k, u multiplies the exponent, and lse = m * w + log(l).
template <typename T>
struct Args {
  Problem<T> p;
  T c, u, w;
  bool vec_q, vec_k, vec_v, vec_do;  // 16-byte loads allowed (unit column stride, alignment)
  bool vec_out;                      // 16-byte stores of output rows allowed
};

// May the rows of `v` (ncols wide) be read 16 bytes at a time? Needs a unit column stride and
// every row start 16-byte aligned.
template <typename T>
inline bool can_load_16(const View4<T>& v, std::int64_t ncols) {
  constexpr int VW = 16 / sizeof(T);
  return v.s3 == 1 && ncols % VW == 0 && reinterpret_cast<std::uintptr_t>(v.data) % 16 == 0 &&
         v.s0 % VW == 0 && v.s1 % VW == 0 && v.s2 % VW == 0;
}

// Host helpers shared by the forward and backward launchers (attention_forward.cu).
template <typename T>
Args<T> make_args(const Problem<T>& p);  // the units above, and which loads may be 16 bytes
void allow_shared_memory(const void* kernel, int bytes, const char* name);
std::int64_t checked_grid(std::int64_t blocks, const char* name);
void check_head_dims(std::int64_t D, std::int64_t Dv);

// ------------------------------------------------------------------------------ tile loads --
// Copy rows [row0, row0 + ROWS) of the (b, h) slice of `src` into shared memory `dst` (row-major,
// leading dimension DP + VW), columns [0, DP). Entries past the last row (nrows) or column
// (ncols) are written as zeros: padded rows and columns then contribute 0 to every product.
// Consecutive threads read consecutive 16-byte pieces of a row, so a warp's loads are coalesced.
template <typename T, int ROWS, int DP>
__device__ __forceinline__ void load_tile(T* dst, const View4<T>& src, std::int64_t b,
                                          std::int64_t h, std::int64_t row0, std::int64_t nrows,
                                          std::int64_t ncols, bool vec) {
  constexpr int VW = 16 / sizeof(T), LD = DP + VW;
  if (vec) {  // unit column stride, ncols % VW == 0, rows 16-byte aligned
    constexpr int CH = DP / VW;
#pragma unroll 4
    for (int idx = threadIdx.x; idx < ROWS * CH; idx += kThreads) {
      const int r = idx / CH, c = (idx % CH) * VW;
      T t[VW];
#pragma unroll
      for (int e = 0; e < VW; ++e) t[e] = T(0);
      if (row0 + r < nrows && c < ncols) ld16(src.row(b, h, row0 + r) + c, t);
      st16(dst + r * LD + c, t);
    }
  } else {  // any strides: one element per thread, still coalesced when the column stride is 1
#pragma unroll 4
    for (int idx = threadIdx.x; idx < ROWS * DP; idx += kThreads) {
      const int r = idx / DP, c = idx % DP;
      dst[r * LD + c] =
          row0 + r < nrows && c < ncols ? src.row(b, h, row0 + r)[c * src.s3] : T(0);
    }
  }
}

// ---------------------------------------------------------------------------- the products --
// acc[i][j] += A[i][:] . B[8 j][:] over the first `nchunk` 16-byte chunks of each row.
// A points at this thread's first row (rows i = 0..RA-1 are consecutive), B at row cg of the
// column tile (rows cg, cg + 8, ...). Each element is summed over d in increasing order.
template <typename T, int RA, int RB, int LD>
__device__ __forceinline__ void dot_tile(T (&acc)[RA][RB], const T* A, const T* B, int nchunk) {
  constexpr int VW = 16 / sizeof(T);
#pragma unroll 1
  for (int ch = 0; ch < nchunk; ++ch) {
    T a[RA][VW];
#pragma unroll
    for (int i = 0; i < RA; ++i) ld16(A + i * LD + ch * VW, a[i]);
#pragma unroll
    for (int j = 0; j < RB; ++j) {
      T bv[VW];
      ld16(B + j * 8 * LD + ch * VW, bv);
#pragma unroll
      for (int e = 0; e < VW; ++e)
#pragma unroll
        for (int i = 0; i < RA; ++i) acc[i][j] = tfma(a[i][e], bv[e], acc[i][j]);
    }
  }
}

// acc[i][c VW + e] += sum_{j < n} P[j][i] * V[j][8 c VW + e]: the P tile is stored transposed
// (P[j][i] at P + j * LDP + i: this thread's RA rows are contiguous), V row-major. P points at
// this thread's first row, V at column cg * VW; a thread owns the 16-byte column chunks
// cg, cg + 8, ... of the output, so that the 8 lanes of a quarter-warp read 128 contiguous bytes.
template <typename T, int RA, int CH, int LDP, int LDV>
__device__ __forceinline__ void accumulate_tile(T (&acc)[RA][CH * (16 / sizeof(T))], const T* P,
                                                const T* V, int n) {
  constexpr int VW = 16 / sizeof(T);
#pragma unroll 2
  for (int j = 0; j < n; ++j) {
    T a[RA];
    ld_n<T, RA>(P + j * LDP, a);
#pragma unroll
    for (int c = 0; c < CH; ++c) {
      T bv[VW];
      ld16(V + j * LDV + c * 8 * VW, bv);
#pragma unroll
      for (int e = 0; e < VW; ++e)
#pragma unroll
        for (int i = 0; i < RA; ++i) acc[i][c * VW + e] = tfma(a[i], bv[e], acc[i][c * VW + e]);
    }
  }
}

// ------------------------------------------------------------------------------- masking ----
// Does the tile (rows from i0, columns [j0, j0 + cols)) need a mask? Interior tiles of an
// unmasked problem do not: their scores are just q.k * c. (Rows past the last query need no
// test: their results are never written, or have zero weight.)
template <typename T>
__device__ __forceinline__ bool tile_needs_mask(const Problem<T>& p, std::int64_t i0,
                                                std::int64_t j0, int cols) {
  return p.mask_kind != kNoMask || j0 + cols > p.M || (p.causal && j0 + cols - 1 > i0);
}

// Stage the mask of a tile (queries i0 .. i0 + NQ, keys j0 .. j0 + NK) in shared memory, as the
// number to add to q.k * c: -inf where the key is hidden (boolean mask False, above the causal
// diagonal, past the last key), else the additive mask value (0 for a boolean mask). Element
// (q, k) goes to dst[pos(q, k)]: the kernels put it exactly where the thread that uses it will
// later write its probability, so the mask costs no extra shared memory and no extra barrier.
// Consecutive threads read consecutive keys, so a row-major mask is read coalesced, and a
// broadcast mask (zero strides) is read from the cache.
template <typename T, int NQ, int NK, typename Pos>
__device__ __forceinline__ void load_mask_tile(T* dst, const Problem<T>& p, std::int64_t b,
                                               std::int64_t h, std::int64_t i0, std::int64_t j0,
                                               Pos pos) {
#pragma unroll 1
  for (int idx = threadIdx.x; idx < NQ * NK; idx += kThreads) {
    const int q = idx / NK, k = idx % NK;
    const std::int64_t i = i0 + q, j = j0 + k;
    bool visible = j < p.M && !(p.causal && j > i);
    T bias = T(0);
    if (visible && i < p.N) {  // padding rows never read the mask
      if (p.mask_kind == kBoolMask)
        visible = p.mask_bool.row(b, h, i)[j * p.mask_bool.s3] != 0;
      else if (p.mask_kind == kAddMask)
        bias = p.mask_add.row(b, h, i)[j * p.mask_add.s3];
    }
    dst[pos(q, k)] = visible ? bias : neg_inf<T>();
  }
}

// A score from its dot product and its staged mask value.
template <typename T>
__device__ __forceinline__ T masked_score(T qk, T c, T mask) {
  return mask == neg_inf<T>() ? mask : tfma(qk, c, mask);
}

}  // namespace gpu
}  // namespace numtrans
