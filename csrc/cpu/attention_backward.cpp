// Lesson 4: the fast backward pass, without an N x M buffer.
//
// Given dout = dL/dout, the gradients of out = softmax(scale q k^T + mask) v are
//     P    = exp(S - lse)                 recomputed from the saved log-sum-exp, tile by tile
//     dv   = P^T dout
//     dP   = dout v^T
//     dS   = P * (dP - D),  D_i = sum_d dout_id out_id   (the softmax Jacobian; D once per row)
//     dq   = scale dS k,    dk = scale dS^T q
// Five small matrix multiplies per tile instead of the forward's two (FlashAttention-2 §3.1).
//
//   for each (batch, head)                     <- the parallel loop (as in PyTorch's CPU kernel)
//     dk = dv = 0 for this head
//     for each query block i
//       pack scale q_i (as q_i^T and as rows), dout_i (as dout_i^T and as rows); D_i; lse_i
//       dq_acc = 0
//       for each key block j up to the causal diagonal
//         Pt  = exp(k_j (scale q_i)^T + mask - lse_i)     (bk x bq tile, row = key)
//         dv_j += Pt dout_i
//         dPt  = v_j dout_i^T
//         dSt  = Pt * (dPt - D_i)
//         dk_j += dSt (scale q_i)
//         dq_acc += dSt^T k_j
//       dq_i = scale dq_acc
//
// One thread owns a whole head, so every gradient number is summed by one thread in one fixed
// order: the result is bitwise the same for any thread count, and no atomics are needed. The
// price: with fewer (batch x head) pairs than threads some threads idle.
//
// Fully masked queries have lse = -inf. We replace it by +inf here, so P = exp(s - inf) = 0 for
// every key and the row contributes nothing (and dq = 0), which is the gradient of out = 0.
#include <cmath>
#include <limits>

#include "cpu/attention.hpp"
#include "cpu/attention_simd.hpp"
#include "cpu/attention_tile.hpp"

namespace numtrans {
namespace NUMTRANS_ISA_NS {

inline i64 bwd_block_q(i64 N, i64 W) {
  return N >= 128 ? kTileQSmall : round_up(N > 0 ? N : 1, W);
}

template <typename T>
void attention_backward(const AttentionProblem<T>& p, const BackwardInput<T>& g,
                        BackwardResult<T> r) {
  constexpr i64 W = Simd<T>::W;
  const T inf = std::numeric_limits<T>::infinity();
  const i64 bq = bwd_block_q(p.N, W), bk = kTileK;
  // *_pad: rounded up to the SIMD width W, so every packed tile row is whole vectors
  const i64 bq_pad = round_up(bq, W), D_pad = round_up(p.D, W), Dv_pad = round_up(p.Dv, W);
  const bool k_in_place = p.k.s3 == 1 && p.D % W == 0;
  const i64 heads = p.B * p.H;
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp parallel if (heads > 1 && worth_threads(p))
#endif
  {
    Buffer<T> qt_buf(p.D * bq_pad), qr_buf(bq_pad * D_pad), dout_t_buf(p.Dv * bq_pad), dout_rows_buf(bq_pad * Dv_pad),
        st_buf(bk * bq_pad), dpt_buf(bk * bq_pad), dq_buf(bq_pad * D_pad), vecs(2 * bq_pad),
        kp_buf(k_in_place ? 0 : bk * D_pad);
    T *qt = qt_buf.get(), *qr = qr_buf.get(), *dout_t = dout_t_buf.get(), *dout_rows = dout_rows_buf.get();
    T *st = st_buf.get(), *dpt = dpt_buf.get(), *dq_acc = dq_buf.get(), *kp = kp_buf.get();
    T *delta = vecs.get(), *lse = delta + bq_pad;
    // The causal Band leaves tile entries above the diagonal unwritten: let them start as 0.
    for (i64 x = 0; x < bk * bq_pad; ++x) st[x] = dpt[x] = T(0);
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (i64 bh = 0; bh < heads; ++bh) {
      const i64 b = bh / p.H, h = bh % p.H;
      T* dk = r.dk.row(b, h, 0);  // rows r.dk.s2 apart (the caller's layout)
      T* dv = r.dv.row(b, h, 0);
      for (i64 j = 0; j < p.M; ++j) {
        for (i64 d = 0; d < p.D; ++d) dk[j * r.dk.s2 + d] = T(0);
        for (i64 d = 0; d < p.Dv; ++d) dv[j * r.dv.s2 + d] = T(0);
      }

      for (i64 i0 = 0; i0 < p.N; i0 += bq) {
        const i64 rows = min64(bq, p.N - i0);
        const i64 kend = p.causal ? min64(p.M, i0 + rows) : p.M;
        // Pack this query block; padding queries get lse = +inf, hence P = 0.
        for (i64 ii = 0; ii < bq_pad; ++ii) {
          const bool real = ii < rows;
          const T* qi = real ? p.q.row(b, h, i0 + ii) : nullptr;
          const T* doi = real ? g.dout.row(b, h, i0 + ii) : nullptr;
          const T* oi = real ? g.out.row(b, h, i0 + ii) : nullptr;
          for (i64 d = 0; d < D_pad; ++d) {
            const T x = real && d < p.D ? p.scale * qi[d * p.q.s3] : T(0);
            qr[ii * D_pad + d] = x;
            if (d < p.D) qt[d * bq_pad + ii] = x;
          }
          T di = T(0);
          for (i64 d = 0; d < Dv_pad; ++d) {
            const T x = real && d < p.Dv ? doi[d * g.dout.s3] : T(0);
            dout_rows[ii * Dv_pad + d] = x;
            if (d < p.Dv) {
              dout_t[d * bq_pad + ii] = x;
              if (real) di += x * oi[d * g.out.s3];
            }
          }
          delta[ii] = di;
          const T li = real ? g.lse[bh * p.N + i0 + ii] : inf;
          lse[ii] = li == -inf ? inf : li;
        }
        for (i64 x = 0; x < bq_pad * D_pad; ++x) dq_acc[x] = T(0);

        for (i64 j0 = 0; j0 < kend; j0 += bk) {
          const i64 cols = min64(bk, kend - j0);
          const T* kb = p.k.row(b, h, j0);
          // causal: skip what lies above the diagonal (Band in attention_simd.hpp)
          const Band::Kind all = Band::all;
          const Band scores{p.causal ? Band::rows_to_col : all, i0 - j0};
          const Band by_key{p.causal ? Band::k_from_row : all, i0 - j0};
          const Band by_query{p.causal ? Band::k_to_row : all, i0 - j0};
          gemm(cols, bq_pad, p.D, kb, p.k.s2, p.k.s3, qt, bq_pad, st, bq_pad, false, scores);
          mask_tile(p, b, h, i0, rows, j0, cols, st, bq_pad);
          for (i64 jj = 0; jj < cols; ++jj)
            for (i64 c = 0; c < bq_pad; c += W)
              store(st + jj * bq_pad + c, vexp<T>(load(st + jj * bq_pad + c) - load(lse + c)));

          gemm(cols, p.Dv, rows, st, bq_pad, 1, dout_rows, Dv_pad, dv + j0 * r.dv.s2, r.dv.s2, true,
               by_key);  // dv_j
          gemm(cols, bq_pad, p.Dv, p.v.row(b, h, j0), p.v.s2, p.v.s3, dout_t, bq_pad, dpt, bq_pad,
               false, scores);
          for (i64 jj = 0; jj < cols; ++jj)
            for (i64 c = 0; c < bq_pad; c += W) {
              T* x = dpt + jj * bq_pad + c;
              store(x, load(st + jj * bq_pad + c) * (load(x) - load(delta + c)));
            }
          gemm(cols, p.D, rows, dpt, bq_pad, 1, qr, D_pad, dk + j0 * r.dk.s2, r.dk.s2, true,
               by_key);  // dk_j

          const T* kr = kb;  // dq needs k_j as a packed right operand
          i64 ldk = p.k.s2;
          if (!k_in_place) {
            for (i64 jj = 0; jj < cols; ++jj)
              for (i64 d = 0; d < D_pad; ++d)
                kp[jj * D_pad + d] = d < p.D ? kb[jj * p.k.s2 + d * p.k.s3] : T(0);
            kr = kp, ldk = D_pad;
          }
          gemm(rows, D_pad, cols, dpt, 1, bq_pad, kr, ldk, dq_acc, D_pad, true, by_query);
        }
        for (i64 ii = 0; ii < rows; ++ii) {
          T* dq = r.dq.row(b, h, i0 + ii);
          for (i64 d = 0; d < p.D; ++d) dq[d] = p.scale * dq_acc[ii * D_pad + d];
        }
      }
    }
  }
}

template void attention_backward<float>(const AttentionProblem<float>&,
                                        const BackwardInput<float>&, BackwardResult<float>);
template void attention_backward<double>(const AttentionProblem<double>&,
                                         const BackwardInput<double>&, BackwardResult<double>);

}  // namespace NUMTRANS_ISA_NS
}  // namespace numtrans
