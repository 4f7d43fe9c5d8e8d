// The forward pass on the GPU: FlashAttention-2's algorithm, one thread block per query tile.
//
// The loop is the one of csrc/cpu/attention_forward.cpp, with the GPU's three levels of memory
// in mind (device memory: large and slow; shared memory: 228 KB per multiprocessor, fast;
// registers: 64K per multiprocessor, fastest):
//
//   block (query tile, batch x head)           <- the grid: every block writes its own rows
//     Q tile -> shared memory (once)
//     m = -inf, l = 0, O = 0  per query row    (in registers, never written to memory)
//     for each key tile j up to the causal diagonal   <- tiles above it are never loaded
//       K_j, V_j -> shared memory              (coalesced 16-byte loads; the whole block helps)
//       S = Q K_j^T                            (each thread: its TM x TN scores, in registers)
//       S = mask(S); m_new = max(m, row max S) (8 lanes share a row: 3 shuffles)
//       P = exp2(S - m_new); l = alpha l + row sum P; O = alpha O   with alpha = exp2(m - m_new)
//       P -> shared memory (each warp its own rows); O += P V_j
//     out = O / l, lse = m + log l             (once, at the end: FlashAttention-2's order)
//
// Why shared memory at all? Every key of the tile is used by every query of the block (16 TM of
// them): staging K_j and V_j once per block divides the device-memory traffic by the query tile
// height, and lets each thread read its operands 16 bytes at a time without bank conflicts.
// Why P through shared memory? A thread holds the scores of its rows for 1/8 of the keys, but
// O += P V needs its rows for all keys of the tile; the 8 lanes of a row group exchange them
// through a small per-warp buffer (a __syncwarp, not a block-wide barrier, is enough).
//
// The exponentials use exp2 with log2(e) folded into the scale (see Args in attention_tile.cuh):
// x = q.k * (scale log2 e), p = exp2(x - m), and in float32 exp2 is one hardware instruction
// (MUFU.EX2) where exp would need a multiply first. The running max m is kept in the same units.
// (With an additive mask the scores stay in natural units; see Args for why.)
//
// A row whose keys are all masked keeps m = -inf. Using 0 in its place (FlashAttention's
// softmax.h does the same) turns exp2(-inf - (-inf)) = NaN into exp2(-inf - 0) = 0, so such a row
// ends with l = 0, and we write out = 0 and lse = -inf without a special case in the loop.
//
// Masks (a boolean or additive (B, H, N, M) view, zero strides where broadcast), the causal
// diagonal and the ragged last key tile are staged per tile in shared memory as one number per
// score (attention_tile.cuh: load_mask_tile); interior tiles of unmasked problems skip that.
//
// Causal problems launch the last query tiles first: they have the most key tiles, and starting
// the longest blocks first keeps the last wave of blocks short.
//
// What this kernel does not do (yet): the products run on the plain float32 FMA units. Tensor
// cores in TF32 would be several times faster but round the inputs to 10-bit mantissas, which
// fails the float32 accuracy rule of the tests; PyTorch's float32 kernel uses "3xTF32" (three
// TF32 products that recover float32 accuracy), the natural next step here. Nor does it overlap
// the loads of tile j + 1 with the arithmetic on tile j (cp.async double buffering): the other
// thread blocks on the multiprocessor (2 or 3) hide part of that latency instead.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/attention.cuh"
#include "cuda/attention_tile.cuh"
#include "cuda/check.hpp"

namespace numtrans {
namespace gpu {

// Shared memory layout (elements of T):
//   qs  [BQ][LD]           the query tile (LD = DP + VW)
//   ks  [BK][LD]           the key tile
//   vs  [BK][LD]           the value tile
//   ps  [4][BK][LDP]       P, transposed, one slice per warp (LDP = 4 TM + VW); before P, the
//                          tile's mask (load_mask_tile)
template <typename T, int DP, int TM, int TN>
__global__ void __launch_bounds__(kThreads, blocks_per_sm(forward_smem(sizeof(T), DP)))
    attention_forward_kernel(const Args<T> a, T* __restrict__ out, T* __restrict__ lse) {
  constexpr int VW = 16 / sizeof(T), LD = DP + VW, CH = DP / (8 * VW);
  constexpr int BQ = 16 * TM, BK = 8 * TN, RW = 4 * TM, LDP = RW + VW;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* ks = qs + BQ * LD;
  T* vs = ks + BK * LD;
  T* ps = vs + BK * LD;

  const Problem<T>& p = a.p;
  const std::int64_t BH = p.B * p.H, nqb = (p.N + BQ - 1) / BQ;
  const std::int64_t bh = blockIdx.x % BH, qb = nqb - 1 - blockIdx.x / BH;  // last tiles first
  const std::int64_t b = bh / p.H, h = bh % p.H, i0 = qb * BQ;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rg = lane / 8, cg = lane % 8;
  const int r0 = warp * RW + rg * TM;  // this thread's first row within the tile
  T* pw = ps + warp * BK * LDP;        // this warp's slice of P

  load_tile<T, BQ, DP>(qs, p.q, b, h, i0, p.N, p.D, a.vec_q);
  const std::int64_t kend = p.causal ? min(p.M, i0 + BQ) : p.M;  // keys past it are all masked
  const int dchunks = static_cast<int>((p.D + VW - 1) / VW);     // chunks of q.k holding data

  T o[TM][CH * VW], m[TM], l[TM];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    m[i] = neg_inf<T>(), l[i] = T(0);
#pragma unroll
    for (int c = 0; c < CH * VW; ++c) o[i][c] = T(0);
  }

  for (std::int64_t j0 = 0; j0 < kend; j0 += BK) {
    __syncthreads();  // every warp is done with the previous K, V (and the Q load is complete)
    load_tile<T, BK, DP>(ks, p.k, b, h, j0, p.M, p.D, a.vec_k);
    load_tile<T, BK, DP>(vs, p.v, b, h, j0, p.M, p.Dv, a.vec_v);
    const bool masked = tile_needs_mask(p, i0, j0, BK);
    if (masked)  // into ps, where each thread will write P for the same (row, key)
      load_mask_tile<T, BQ, BK>(ps, p, b, h, i0, j0, [](int q, int k) {
        return (q / RW) * BK * LDP + k * LDP + q % RW;
      });
    __syncthreads();

    // S = Q K^T for this thread's TM rows and TN keys (cg, cg + 8, ...).
    T s[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) s[i][j] = T(0);
    dot_tile<T, TM, TN, LD>(s, qs + r0 * LD, ks + cg * LD, dchunks);

    if (masked) {
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          s[i][j] = masked_score(s[i][j], a.c, pw[(cg + 8 * j) * LDP + rg * TM + i]);
    } else {
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) s[i][j] *= a.c;
    }

    // Online softmax, one row at a time; P overwrites S in registers.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      T mx = s[i][0];
#pragma unroll
      for (int j = 1; j < TN; ++j) mx = tmax(mx, s[i][j]);
      const T m_new = tmax(m[i], group8_max(mx));
      const T m_use = m_new == neg_inf<T>() ? T(0) : m_new;  // see the top comment
      const T alpha = texp2((m[i] - m_use) * a.u);
      m[i] = m_new;
      T sum = T(0);
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        s[i][j] = texp2((s[i][j] - m_use) * a.u);
        sum += s[i][j];
      }
      l[i] = l[i] * alpha + sum;  // this lane's share of the row sum; added up at the end
#pragma unroll
      for (int c = 0; c < CH * VW; ++c) o[i][c] *= alpha;
    }

    // P to this warp's slice of shared memory (transposed: pw[key][row]), then O += P V.
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) pw[(cg + 8 * j) * LDP + rg * TM + i] = s[i][j];
    __syncwarp();
    const int nk = static_cast<int>(min(static_cast<std::int64_t>(BK), kend - j0));
    accumulate_tile<T, TM, CH, LDP, LD>(o, pw + rg * TM, vs + cg * VW, nk);
  }

  // Normalise once, write the rows and their log-sum-exp.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const T lt = group8_sum(l[i]);
    const std::int64_t row = i0 + r0 + i;
    if (row >= p.N) continue;
    const T inv = lt == T(0) ? T(0) : T(1) / lt;  // l = 0: no visible key, out = 0
    T* orow = out + (bh * p.N + row) * p.Dv;
#pragma unroll
    for (int c = 0; c < CH; ++c) {
      const int col = (cg + 8 * c) * VW;
      if (col >= p.Dv) continue;
      T t[VW];
#pragma unroll
      for (int e = 0; e < VW; ++e) t[e] = o[i][c * VW + e] * inv;
      if (a.vec_out) {
        st16(orow + col, t);
      } else {
#pragma unroll
        for (int e = 0; e < VW; ++e)
          if (col + e < p.Dv) orow[col + e] = t[e];
      }
    }
    if (cg == 0) lse[bh * p.N + row] = lt == T(0) ? neg_inf<T>() : m[i] * a.w + tlog(lt);
  }
}

// ------------------------------------------------------------------------------- host side --
// Let a kernel use more than the default 48 KB of dynamic shared memory, after checking that
// this GPU has that much per block.
void allow_shared_memory(const void* kernel, int bytes, const char* name) {
  int device = 0, limit = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  if (bytes > limit)
    throw std::runtime_error(std::string(name) + " needs " + std::to_string(bytes) +
                             " bytes of shared memory per block; this GPU allows " +
                             std::to_string(limit));
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        std::string("cudaFuncSetAttribute(") + name + ")");
}

// The units of the scores (see Args in attention_tile.cuh) and the load flags.
template <typename T>
Args<T> make_args(const Problem<T>& p) {
  constexpr double kLog2e = 1.4426950408889634, kLn2 = 0.6931471805599453;
  Args<T> a;
  a.p = p;
  const bool additive = p.mask_kind == kAddMask;
  a.c = static_cast<T>(additive ? p.scale : p.scale * kLog2e);
  a.u = static_cast<T>(additive ? kLog2e : 1.0);
  a.w = static_cast<T>(additive ? 1.0 : kLn2);
  a.vec_q = can_load_16(p.q, p.D);
  a.vec_k = can_load_16(p.k, p.D);
  a.vec_v = can_load_16(p.v, p.Dv);
  a.vec_do = false;
  a.vec_out = p.Dv % (16 / sizeof(T)) == 0;  // outputs are C-contiguous, 16-byte aligned
  return a;
}

std::int64_t checked_grid(std::int64_t blocks, const char* name) {
  if (blocks > 2147483647LL)
    throw std::invalid_argument(std::string(name) + ": problem too large (" +
                                std::to_string(blocks) + " thread blocks)");
  return blocks;
}

void check_head_dims(std::int64_t D, std::int64_t Dv) {
  if (D > kMaxHeadDim || Dv > kMaxHeadDim)
    throw std::invalid_argument("the CUDA attention kernels support head dims up to " +
                                std::to_string(kMaxHeadDim) + ", got D=" + std::to_string(D) +
                                ", Dv=" + std::to_string(Dv));
}

template <typename T, int DP>
void launch_forward(const Args<T>& a, T* out, T* lse, cudaStream_t stream) {
  constexpr TileShape t = forward_shape(sizeof(T), DP);
  constexpr int smem = forward_smem(sizeof(T), DP);
  const auto kernel = attention_forward_kernel<T, DP, t.tm, t.tn>;
  allow_shared_memory(reinterpret_cast<const void*>(kernel), smem, "attention forward kernel");
  const std::int64_t nqb = (a.p.N + 16 * t.tm - 1) / (16 * t.tm);
  const std::int64_t blocks = checked_grid(nqb * a.p.B * a.p.H, "attention forward");
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(a, out, lse);
  check_launch("attention forward kernel");
}

template <typename T>
void attention_forward(const Problem<T>& p, T* out, T* lse, cudaStream_t stream) {
  check_head_dims(p.D, p.Dv);
  if (p.B * p.H * p.N == 0) return;  // nothing to write
  const Args<T> a = make_args(p);
  switch (padded_head_dim(static_cast<int>(p.D > p.Dv ? p.D : p.Dv))) {
    case 32: return launch_forward<T, 32>(a, out, lse, stream);
    case 64: return launch_forward<T, 64>(a, out, lse, stream);
    case 128: return launch_forward<T, 128>(a, out, lse, stream);
    default: return launch_forward<T, 256>(a, out, lse, stream);
  }
}

KernelTiles attention_tiles(int bytes, int head_dim) {
  if (bytes != 4 && bytes != 8) throw std::invalid_argument("element size must be 4 or 8 bytes");
  if (head_dim < 0 || head_dim > kMaxHeadDim)
    throw std::invalid_argument("head dim must be in [0, " + std::to_string(kMaxHeadDim) + "]");
  const int dp = padded_head_dim(head_dim);
  const TileShape f = forward_shape(bytes, dp), kv = backward_kv_shape(bytes, dp),
                  q = backward_q_shape(bytes, dp);
  return KernelTiles{dp,
                     16 * f.tm,  8 * f.tn,  forward_smem(bytes, dp),
                     16 * kv.tm, 8 * kv.tn, backward_kv_smem(bytes, dp),
                     16 * q.tm,  8 * q.tn,  backward_q_smem(bytes, dp),
                     kThreads};
}

template Args<float> make_args(const Problem<float>&);
template Args<double> make_args(const Problem<double>&);
template void attention_forward<float>(const Problem<float>&, float*, float*, cudaStream_t);
template void attention_forward<double>(const Problem<double>&, double*, double*, cudaStream_t);

}  // namespace gpu
}  // namespace numtrans
