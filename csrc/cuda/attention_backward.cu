// The backward pass on the GPU: FlashAttention-2's Algorithm 2, without an N x M buffer.
//
// Given dO = dL/dout, with P recomputed tile by tile from the saved log-sum-exp
// (csrc/cpu/attention_backward.cpp derives the formulas):
//     P  = exp(S - lse)        dV = P^T dO        dP = dO V^T
//     dS = P * (dP - D),  D_i = sum_d dO_id O_id  (one number per query row)
//     dQ = scale dS K          dK = scale dS^T Q
//
// Three kernels:
//
//   1. preprocess        one thread per query row: D_i = rowsum(dO * O), and lse in the units of
//                        the scores (+inf for a fully masked row, so that P = exp2(-inf) = 0 there)
//   2. dK, dV            one thread block per (key tile, batch x head); the block walks down the
//                        query tiles (from the causal diagonal on) and keeps its dK and dV tiles
//                        in registers all the way: each is written once, by one thread, with no
//                        atomics. Per query tile:
//                          S^T = K Q^T, dP^T = V dO^T        (each thread: TK keys x TN queries)
//                          P^T = exp2(S^T - lse), dS^T = P^T * (dP^T - D)
//                          dV += P^T dO, dK += dS^T Q         (P^T, dS^T through shared memory)
//                          dQ += dS K for this tile's keys    (atomicAdd into dq; optional)
//   3. dQ (deterministic mode only)
//                        one thread block per query tile, looping over the key tiles like the
//                        forward: S = Q K^T, dP = dO V^T, dS, dQ += dS K in registers.
//
// dQ is the one output that many blocks contribute to (every key tile adds to every query row).
// FlashAttention-2 adds the contributions with atomicAdd: cheap, but the order in which the
// blocks' additions land changes from run to run, so the last bits of dq do too. Kernel 3 trades
// that for recomputing S and dP once more (7 matrix products instead of 5): each dq element is
// then summed by one thread in a fixed order, and the result is bitwise repeatable.
// (dK and dV, and the forward, are deterministic in both modes.)
//
// Causal problems: key tile j is seen only by queries i >= j, so its block starts at the query
// tile holding row j0, and blocks are launched in the order of their work (first key tiles,
// which see every later query, first).
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/attention.cuh"
#include "cuda/attention_tile.cuh"
#include "cuda/check.hpp"

namespace numtrans {
namespace gpu {

// ------------------------------------------------------------------------ 1. preprocess ----
// delta[r] = sum_d dout[r, d] out[r, d];  lrow[r] = lse[r] / w (+inf where lse = -inf), for the
// rows r = (b H + h) N + i, one thread per row. The sum runs over d = 0, 1, ... one fused
// multiply-add at a time: the order in which dot_tile computes dP = dO . v. Where a row's
// probabilities are exactly one-hot (a single visible key: then out = v exactly), dP - D is then
// exactly 0, as it should be; summed in another order, float32 rounding would leave ~1e-6 there,
// multiplied into dq and dk.
template <typename T>
__global__ void __launch_bounds__(256)
    attention_backward_preprocess_kernel(std::int64_t H, std::int64_t N, std::int64_t Dv,
                                         const View4<T> dout, const View4<T> out,
                                         const T* __restrict__ lse, T inv_w,
                                         T* __restrict__ delta, T* __restrict__ lrow,
                                         std::int64_t rows) {
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * 256 + threadIdx.x;
  if (r >= rows) return;
  const std::int64_t bh = r / N, i = r % N, b = bh / H, h = bh % H;
  const T* g = dout.row(b, h, i);
  const T* o = out.row(b, h, i);
  T sum = T(0);
  for (std::int64_t d = 0; d < Dv; ++d) sum = tfma(g[d * dout.s3], o[d * out.s3], sum);
  delta[r] = sum;
  const T l = lse[r];
  lrow[r] = l == neg_inf<T>() ? T(INFINITY) : l * inv_w;
}

// -------------------------------------------------------------------------- 2. dK and dV ----
// Shared memory layout (elements of T), LD = DP + VW:
//   ks  [BK][LD]   vs  [BK][LD]       this block's keys and values (loaded once)
//   qs  [BQ][LD]   dos [BQ][LD]       the current query tile and its output gradient
//   ps  [4][BQ][LDP]                  the tile's mask, then P^T, then dS^T, stored as
//                                     ps[query][key], one slice per warp
//   dsb [BK][LDS]                     dS for the whole block, [key][query] (atomic mode only)
//   lq  [BQ]       dd  [BQ]           lse (in score units) and D of the query tile
// Here the thread's TK "rows" are keys (lane groups split the keys) and its TN columns queries.
template <typename T, int DP, int TK, int TN, bool kAtomicDq>
__global__ void __launch_bounds__(kThreads, blocks_per_sm(backward_kv_smem(sizeof(T), DP)))
    attention_backward_kv_kernel(const Args<T> a, const View4<T> dout,
                                 const T* __restrict__ delta, const T* __restrict__ lrow,
                                 T* __restrict__ dq, T* __restrict__ dk, T* __restrict__ dv) {
  constexpr int VW = 16 / sizeof(T), LD = DP + VW, CH = DP / (8 * VW);
  constexpr int BK = 16 * TK, BQ = 8 * TN, RW = 4 * TK, LDP = RW + VW, LDS = BQ + VW;
  constexpr int TQ = BQ / 16;  // query rows per thread in the dQ step
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw);
  T* vs = ks + BK * LD;
  T* qs = vs + BK * LD;
  T* dos = qs + BQ * LD;
  T* ps = dos + BQ * LD;
  T* dsb = ps + kWarps * BQ * LDP;
  T* lq = dsb + BK * LDS;
  T* dd = lq + BQ;

  const Problem<T>& p = a.p;
  const std::int64_t BH = p.B * p.H;
  const std::int64_t bh = blockIdx.x % BH, kb = blockIdx.x / BH;
  const std::int64_t b = bh / p.H, h = bh % p.H, j0 = kb * BK;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rg = lane / 8, cg = lane % 8;
  const int k0 = warp * RW + rg * TK;  // this thread's first key within the tile
  T* pw = ps + warp * BQ * LDP;
  const int qk_chunks = static_cast<int>((p.D + VW - 1) / VW);
  const int v_chunks = static_cast<int>((p.Dv + VW - 1) / VW);

  load_tile<T, BK, DP>(ks, p.k, b, h, j0, p.M, p.D, a.vec_k);
  load_tile<T, BK, DP>(vs, p.v, b, h, j0, p.M, p.Dv, a.vec_v);

  T dk_acc[TK][CH * VW], dv_acc[TK][CH * VW];
#pragma unroll
  for (int t = 0; t < TK; ++t)
#pragma unroll
    for (int c = 0; c < CH * VW; ++c) dk_acc[t][c] = T(0), dv_acc[t][c] = T(0);

  const std::int64_t nqt = (p.N + BQ - 1) / BQ;
  for (std::int64_t qt = p.causal ? j0 / BQ : 0; qt < nqt; ++qt) {
    const std::int64_t i0 = qt * BQ;
    __syncthreads();  // the previous tile's Q, dO, P and dS are no longer read
    load_tile<T, BQ, DP>(qs, p.q, b, h, i0, p.N, p.D, a.vec_q);
    load_tile<T, BQ, DP>(dos, dout, b, h, i0, p.N, p.Dv, a.vec_do);
    for (int x = threadIdx.x; x < BQ; x += kThreads) {
      const bool real = i0 + x < p.N;  // padding queries: lse = +inf gives P = 0
      lq[x] = real ? lrow[bh * p.N + i0 + x] : T(INFINITY);
      dd[x] = real ? delta[bh * p.N + i0 + x] : T(0);
    }
    const bool masked = tile_needs_mask(p, i0, j0, BK);
    if (masked)  // into ps, where each thread will write P for the same (query, key)
      load_mask_tile<T, BQ, BK>(ps, p, b, h, i0, j0, [](int q, int k) {
        return (k / RW) * BQ * LDP + q * LDP + k % RW;
      });
    __syncthreads();

    // S^T = K Q^T and dP^T = V dO^T for this thread's TK keys and TN queries (cg, cg + 8, ...).
    T s[TK][TN], dp[TK][TN];
#pragma unroll
    for (int t = 0; t < TK; ++t)
#pragma unroll
      for (int n = 0; n < TN; ++n) s[t][n] = T(0), dp[t][n] = T(0);
    dot_tile<T, TK, TN, LD>(s, ks + k0 * LD, qs + cg * LD, qk_chunks);
    dot_tile<T, TK, TN, LD>(dp, vs + k0 * LD, dos + cg * LD, v_chunks);

    // P^T = exp2(S^T - lse) and dS^T = P^T * (dP^T - D), in place.
#pragma unroll
    for (int n = 0; n < TN; ++n) {
      const int q = cg + 8 * n;
#pragma unroll
      for (int t = 0; t < TK; ++t)
        s[t][n] = masked ? masked_score(s[t][n], a.c, pw[q * LDP + rg * TK + t]) : s[t][n] * a.c;
      const T lqn = lq[q], ddn = dd[q];
#pragma unroll
      for (int t = 0; t < TK; ++t) {
        s[t][n] = texp2((s[t][n] - lqn) * a.u);
        dp[t][n] = s[t][n] * (dp[t][n] - ddn);
      }
    }

    // dV += P^T dO: P^T goes through this warp's buffer, ps[query][key].
    const int nq = static_cast<int>(min(static_cast<std::int64_t>(BQ), p.N - i0));
#pragma unroll
    for (int t = 0; t < TK; ++t)
#pragma unroll
      for (int n = 0; n < TN; ++n) pw[(cg + 8 * n) * LDP + rg * TK + t] = s[t][n];
    __syncwarp();
    accumulate_tile<T, TK, CH, LDP, LD>(dv_acc, pw + rg * TK, dos + cg * VW, nq);
    __syncwarp();  // all lanes have read P before dS overwrites it

    // dK += dS^T Q (scaled at the end), through the same buffer.
#pragma unroll
    for (int t = 0; t < TK; ++t)
#pragma unroll
      for (int n = 0; n < TN; ++n) {
        pw[(cg + 8 * n) * LDP + rg * TK + t] = dp[t][n];
        if constexpr (kAtomicDq) dsb[(k0 + t) * LDS + cg + 8 * n] = dp[t][n];
      }
    __syncwarp();
    accumulate_tile<T, TK, CH, LDP, LD>(dk_acc, pw + rg * TK, qs + cg * VW, nq);

    if constexpr (kAtomicDq) {
      // dQ[q] += scale sum_k dS[k][q] K[k] over this block's keys; the thread takes TQ query
      // rows and the column chunks cg, cg + 8, ..., and adds its results to dq atomically.
      __syncthreads();  // dsb holds every warp's keys
      const int q0 = (warp * 4 + rg) * TQ;
      T acc[TQ][CH * VW];
#pragma unroll
      for (int i = 0; i < TQ; ++i)
#pragma unroll
        for (int c = 0; c < CH * VW; ++c) acc[i][c] = T(0);
      const int nk = static_cast<int>(min(static_cast<std::int64_t>(BK), p.M - j0));
      accumulate_tile<T, TQ, CH, LDS, LD>(acc, dsb + q0, ks + cg * VW, nk);
      const T scale = static_cast<T>(p.scale);
#pragma unroll
      for (int i = 0; i < TQ; ++i) {
        const std::int64_t row = i0 + q0 + i;
        if (row >= p.N) continue;
        T* dqrow = dq + (bh * p.N + row) * p.D;
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
          for (int e = 0; e < VW; ++e) {
            const int col = (cg + 8 * c) * VW + e;
            if (col < p.D) atomicAdd(dqrow + col, acc[i][c * VW + e] * scale);
          }
      }
    }
  }

  // Write this thread's keys: dk = scale dS^T Q, dv = P^T dO.
  const T scale = static_cast<T>(p.scale);
#pragma unroll
  for (int t = 0; t < TK; ++t) {
    const std::int64_t key = j0 + k0 + t;
    if (key >= p.M) continue;
    T* dkrow = dk + (bh * p.M + key) * p.D;
    T* dvrow = dv + (bh * p.M + key) * p.Dv;
#pragma unroll
    for (int c = 0; c < CH; ++c) {
      const int col = (cg + 8 * c) * VW;
      T x[VW], y[VW];
#pragma unroll
      for (int e = 0; e < VW; ++e) x[e] = dk_acc[t][c * VW + e] * scale, y[e] = dv_acc[t][c * VW + e];
      if (col < p.D) {
        if (p.D % VW == 0) {
          st16(dkrow + col, x);
        } else {
#pragma unroll
          for (int e = 0; e < VW; ++e)
            if (col + e < p.D) dkrow[col + e] = x[e];
        }
      }
      if (col < p.Dv) {
        if (p.Dv % VW == 0) {
          st16(dvrow + col, y);
        } else {
#pragma unroll
          for (int e = 0; e < VW; ++e)
            if (col + e < p.Dv) dvrow[col + e] = y[e];
        }
      }
    }
  }
}

// ------------------------------------------------------------------ 3. deterministic dQ ----
// Shared memory layout (elements of T), LD = DP + VW:
//   qs [BQ][LD]   dos [BQ][LD]        this block's queries and their output gradient (once)
//   ks [BK][LD]   vs  [BK][LD]        the current key tile
//   ps [4][BK][LDP]                   the tile's mask, then dS, transposed, per warp
//                                     (LDP = 4 TM + VW)
template <typename T, int DP, int TM, int TN>
__global__ void __launch_bounds__(kThreads, blocks_per_sm(backward_q_smem(sizeof(T), DP)))
    attention_backward_q_kernel(const Args<T> a, const View4<T> dout, const T* __restrict__ delta,
                                const T* __restrict__ lrow, T* __restrict__ dq) {
  constexpr int VW = 16 / sizeof(T), LD = DP + VW, CH = DP / (8 * VW);
  constexpr int BQ = 16 * TM, BK = 8 * TN, RW = 4 * TM, LDP = RW + VW;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* dos = qs + BQ * LD;
  T* ks = dos + BQ * LD;
  T* vs = ks + BK * LD;
  T* ps = vs + BK * LD;

  const Problem<T>& p = a.p;
  const std::int64_t BH = p.B * p.H, nqb = (p.N + BQ - 1) / BQ;
  const std::int64_t bh = blockIdx.x % BH, qb = nqb - 1 - blockIdx.x / BH;  // last tiles first
  const std::int64_t b = bh / p.H, h = bh % p.H, i0 = qb * BQ;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rg = lane / 8, cg = lane % 8;
  const int r0 = warp * RW + rg * TM;
  T* pw = ps + warp * BK * LDP;
  const int qk_chunks = static_cast<int>((p.D + VW - 1) / VW);
  const int v_chunks = static_cast<int>((p.Dv + VW - 1) / VW);

  load_tile<T, BQ, DP>(qs, p.q, b, h, i0, p.N, p.D, a.vec_q);
  load_tile<T, BQ, DP>(dos, dout, b, h, i0, p.N, p.Dv, a.vec_do);
  T lr[TM], dd[TM], acc[TM][CH * VW];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const std::int64_t row = i0 + r0 + i;
    lr[i] = row < p.N ? lrow[bh * p.N + row] : T(INFINITY);
    dd[i] = row < p.N ? delta[bh * p.N + row] : T(0);
#pragma unroll
    for (int c = 0; c < CH * VW; ++c) acc[i][c] = T(0);
  }

  const std::int64_t kend = p.causal ? min(p.M, i0 + BQ) : p.M;
  for (std::int64_t j0 = 0; j0 < kend; j0 += BK) {
    __syncthreads();
    load_tile<T, BK, DP>(ks, p.k, b, h, j0, p.M, p.D, a.vec_k);
    load_tile<T, BK, DP>(vs, p.v, b, h, j0, p.M, p.Dv, a.vec_v);
    const bool masked = tile_needs_mask(p, i0, j0, BK);
    if (masked)  // into ps, where each thread will write dS for the same (row, key)
      load_mask_tile<T, BQ, BK>(ps, p, b, h, i0, j0, [](int q, int k) {
        return (q / RW) * BK * LDP + k * LDP + q % RW;
      });
    __syncthreads();

    T s[TM][TN], dp[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) s[i][j] = T(0), dp[i][j] = T(0);
    dot_tile<T, TM, TN, LD>(s, qs + r0 * LD, ks + cg * LD, qk_chunks);
    dot_tile<T, TM, TN, LD>(dp, dos + r0 * LD, vs + cg * LD, v_chunks);

#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        T* slot = pw + (cg + 8 * j) * LDP + rg * TM + i;  // its mask, then its dS
        const T x = masked ? masked_score(s[i][j], a.c, *slot) : s[i][j] * a.c;
        const T pv = texp2((x - lr[i]) * a.u);
        *slot = pv * (dp[i][j] - dd[i]);
      }
    __syncwarp();
    const int nk = static_cast<int>(min(static_cast<std::int64_t>(BK), kend - j0));
    accumulate_tile<T, TM, CH, LDP, LD>(acc, pw + rg * TM, ks + cg * VW, nk);
  }

  const T scale = static_cast<T>(p.scale);
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const std::int64_t row = i0 + r0 + i;
    if (row >= p.N) continue;
    T* dqrow = dq + (bh * p.N + row) * p.D;
#pragma unroll
    for (int c = 0; c < CH; ++c) {
      const int col = (cg + 8 * c) * VW;
      if (col >= p.D) continue;
      T x[VW];
#pragma unroll
      for (int e = 0; e < VW; ++e) x[e] = acc[i][c * VW + e] * scale;
      if (p.D % VW == 0) {
        st16(dqrow + col, x);
      } else {
#pragma unroll
        for (int e = 0; e < VW; ++e)
          if (col + e < p.D) dqrow[col + e] = x[e];
      }
    }
  }
}

// ------------------------------------------------------------------------------- host side --
template <typename T, int DP>
void launch_backward(const Args<T>& a, const View4<T>& dout, const T* delta, const T* lrow, T* dq,
                     T* dk, T* dv, bool deterministic, cudaStream_t stream) {
  const Problem<T>& p = a.p;
  const std::int64_t BH = p.B * p.H;
  if (BH * p.M > 0) {  // with N = 0 this still runs, and writes zeros to dk and dv
    constexpr TileShape t = backward_kv_shape(sizeof(T), DP);
    constexpr int smem = backward_kv_smem(sizeof(T), DP);
    const std::int64_t blocks =
        checked_grid((p.M + 16 * t.tm - 1) / (16 * t.tm) * BH, "attention backward");
    const auto kernel = deterministic ? attention_backward_kv_kernel<T, DP, t.tm, t.tn, false>
                                      : attention_backward_kv_kernel<T, DP, t.tm, t.tn, true>;
    allow_shared_memory(reinterpret_cast<const void*>(kernel), smem,
                        "attention backward dK/dV kernel");
    kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(a, dout, delta, lrow, dq,
                                                                      dk, dv);
    check_launch("attention backward dK/dV kernel");
  }
  if (deterministic && BH * p.N > 0) {
    constexpr TileShape t = backward_q_shape(sizeof(T), DP);
    constexpr int smem = backward_q_smem(sizeof(T), DP);
    const std::int64_t blocks =
        checked_grid((p.N + 16 * t.tm - 1) / (16 * t.tm) * BH, "attention backward");
    const auto kernel = attention_backward_q_kernel<T, DP, t.tm, t.tn>;
    allow_shared_memory(reinterpret_cast<const void*>(kernel), smem,
                        "attention backward dQ kernel");
    kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(a, dout, delta, lrow, dq);
    check_launch("attention backward dQ kernel");
  }
}

template <typename T>
void attention_backward(const Problem<T>& p, const View4<T>& dout, const View4<T>& out,
                        const T* lse, T* dq, T* dk, T* dv, T* workspace, bool deterministic,
                        cudaStream_t stream) {
  check_head_dims(p.D, p.Dv);
  Args<T> a = make_args(p);
  a.vec_do = can_load_16(dout, p.Dv);
  const std::int64_t rows = p.B * p.H * p.N;
  T* delta = workspace;
  T* lrow = workspace + rows;
  if (rows > 0) {
    const T inv_w = static_cast<T>(p.mask_kind == kAddMask ? 1.0 : 1.4426950408889634);
    const std::int64_t blocks = checked_grid((rows + 255) / 256, "attention backward");
    attention_backward_preprocess_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
        p.H, p.N, p.Dv, dout, out, lse, inv_w, delta, lrow, rows);
    check_launch("attention backward preprocess kernel");
  }
  if (!deterministic && rows * p.D > 0)  // the dK/dV kernel adds into dq
    check(cudaMemsetAsync(dq, 0, static_cast<std::size_t>(rows * p.D) * sizeof(T), stream),
          "cudaMemsetAsync(dq)");
  switch (padded_head_dim(static_cast<int>(p.D > p.Dv ? p.D : p.Dv))) {
    case 32: return launch_backward<T, 32>(a, dout, delta, lrow, dq, dk, dv, deterministic, stream);
    case 64: return launch_backward<T, 64>(a, dout, delta, lrow, dq, dk, dv, deterministic, stream);
    case 128:
      return launch_backward<T, 128>(a, dout, delta, lrow, dq, dk, dv, deterministic, stream);
    default:
      return launch_backward<T, 256>(a, dout, delta, lrow, dq, dk, dv, deterministic, stream);
  }
}

template void attention_backward<float>(const Problem<float>&, const View4<float>&,
                                        const View4<float>&, const float*, float*, float*, float*,
                                        float*, bool, cudaStream_t);
template void attention_backward<double>(const Problem<double>&, const View4<double>&,
                                         const View4<double>&, const double*, double*, double*,
                                         double*, double*, bool, cudaStream_t);

}  // namespace gpu
}  // namespace numtrans
