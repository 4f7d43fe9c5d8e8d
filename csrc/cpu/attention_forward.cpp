// Lesson 3: the fast forward pass, FlashAttention-2's algorithm laid out for a CPU.
//
// attention_reference.cpp walks one query and one key at a time. Here the same online-softmax
// recurrence runs on tiles: a block of bq queries against a block of bk keys at once, so that
// the two products (scores = q k^T and out += p v) become small matrix multiplies (gemm in
// attention_simd.hpp) and the softmax becomes vector code.
//
//   for each (batch, head, query block)          <- the parallel loop: no two threads share output
//     qt = scale * q_block^T                     (D x bq, packed once, reused by every key block)
//     m = -inf, l = 0, O = 0                     (running max, running sum, un-normalised output)
//     for each key block j, up to the causal diagonal   <- blocks above it are never touched
//       St = k_j qt                              (bk x bq: row = key, column = query)
//       St += mask; St = -inf where masked
//       m_new = max(m, column max of St);   alpha = exp(m - m_new)
//       Pt = exp(St - m_new);   l = alpha l + column sum of Pt;   O = alpha O + Pt^T v_j
//     out = O / l  (once, at the end: FlashAttention-2's order);   lse = m + log l
//
// Why the transposed tile St (keys x queries) rather than S (queries x keys)? The matrix multiply
// wants its right operand packed with contiguous rows. With k_j on the left, only q has to be
// packed (transposed), once per query block, while k and v are read in place through their
// strides. The per-query statistics then run along the rows of St, one vector at a time.
//
// Memory: per thread, a few tiles (qt, St, O, the statistics): O(bq * (D + bk + Dv)), about
// 150 KB in float32 at D = 64, whatever N and M are. Nothing of size N x M exists.
//
// A query whose every key is masked keeps m = -inf. Using 0 in place of that maximum (the trick
// of FlashAttention's softmax.h) turns exp(-inf - (-inf)) = NaN into exp(-inf - 0) = 0, so such a
// row ends with l = 0 and we write out = 0, lse = -inf without a special case in the loop.
#include <cmath>
#include <limits>

#include "cpu/attention.hpp"
#include "cpu/attention_simd.hpp"
#include "cpu/attention_tile.hpp"

namespace numtrans {
namespace NUMTRANS_ISA_NS {

// Tile sizes (attention_tile.hpp): blocks of about 128 keys and 128 queries keep St (64 KB in
// float32) and the packed qt in L2; smaller query blocks for short sequences leave work for
// every thread.
inline i64 block_q(i64 N, i64 W) {
  return N >= 512 ? kTileQ : N >= 128 ? kTileQSmall : round_up(N > 0 ? N : 1, W);
}

template <typename T>
void attention_forward(const AttentionProblem<T>& p, ForwardResult<T> r) {
  constexpr i64 W = Simd<T>::W;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const i64 bq = block_q(p.N, W), bk = kTileK;
  // *_pad: rounded up to the SIMD width W, so every packed tile row is whole vectors
  const i64 bq_pad = round_up(bq, W), Dv_pad = round_up(p.Dv, W);
  const bool v_in_place = p.v.s3 == 1 && p.Dv % W == 0;  // v rows can serve as a packed operand
  const i64 nqb = (p.N + bq - 1) / bq, tasks = p.B * p.H * nqb;
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp parallel if (tasks > 1 && worth_threads(p))
#endif
  {
    Buffer<T> qt_buf(p.D * bq_pad), st_buf(bk * bq_pad), o_buf(bq_pad * Dv_pad), stats(3 * bq_pad),
        vp_buf(v_in_place ? 0 : bk * Dv_pad);
    T *qt = qt_buf.get(), *st = st_buf.get(), *o = o_buf.get(), *vp = vp_buf.get();
    T *m = stats.get(), *l = m + bq_pad, *alpha = l + bq_pad;
    // The causal Band leaves tile entries above the diagonal unwritten: let them start as 0, not
    // as whatever the memory held.
    for (i64 x = 0; x < bk * bq_pad; ++x) st[x] = T(0);
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (i64 t = 0; t < tasks; ++t) {
      // Last query blocks first: under a causal mask they have the most keys.
      const i64 bh = t / nqb, qb = nqb - 1 - t % nqb, b = bh / p.H, h = bh % p.H;
      const i64 i0 = qb * bq, rows = min64(bq, p.N - i0);
      const i64 kend = p.causal ? min64(p.M, i0 + rows) : p.M;

      // qt[d, ii] = scale * q[i0 + ii, d]; padding columns are 0.
      for (i64 ii = 0; ii < bq_pad; ++ii) {
        const T* qi = ii < rows ? p.q.row(b, h, i0 + ii) : nullptr;
        for (i64 d = 0; d < p.D; ++d) qt[d * bq_pad + ii] = qi ? p.scale * qi[d * p.q.s3] : T(0);
      }
      for (i64 ii = 0; ii < bq_pad; ++ii) m[ii] = neg_inf, l[ii] = T(0);
      for (i64 x = 0; x < bq_pad * Dv_pad; ++x) o[x] = T(0);

      for (i64 j0 = 0; j0 < kend; j0 += bk) {
        const i64 cols = min64(bk, kend - j0);
        const i64 off = i0 - j0;  // causal: skip what lies above the diagonal (Band)
        const Band scores{p.causal ? Band::rows_to_col : Band::all, off};
        gemm(cols, bq_pad, p.D, p.k.row(b, h, j0), p.k.s2, p.k.s3, qt, bq_pad, st, bq_pad, false,
             scores);
        mask_tile(p, b, h, i0, rows, j0, cols, st, bq_pad);

        // Column statistics, one vector of W queries at a time (kept in registers down a column).
        for (i64 c = 0; c < bq_pad; c += W) {
          Vec<T> mx = splat(neg_inf);
          for (i64 jj = 0; jj < cols; ++jj) mx = vmax<T>(mx, load(st + jj * bq_pad + c));
          const Vec<T> m_old = load(m + c), m_new = vmax<T>(m_old, mx);
          const Vec<T> mu = m_new == splat(neg_inf) ? Vec<T>{} : m_new;  // see the top comment
          Vec<T> sum = Vec<T>{};
          for (i64 jj = 0; jj < cols; ++jj) {  // Pt = exp(St - m), in place
            const Vec<T> pv = vexp<T>(load(st + jj * bq_pad + c) - mu);
            store(st + jj * bq_pad + c, pv);
            sum += pv;
          }
          const Vec<T> a = vexp<T>(m_old - mu);
          store(alpha + c, a);
          store(m + c, m_new);
          store(l + c, load(l + c) * a + sum);
        }
        for (i64 ii = 0; ii < rows; ++ii) {
          if (alpha[ii] == T(1)) continue;
          const Vec<T> a = splat(alpha[ii]);
          for (i64 c = 0; c < Dv_pad; c += W) store(o + ii * Dv_pad + c, load(o + ii * Dv_pad + c) * a);
        }

        // O += Pt^T v_j : A = Pt read transposed (row stride 1, k stride bq_pad).
        const T* vb = p.v.row(b, h, j0);
        i64 ldv = p.v.s2;
        if (!v_in_place) {
          for (i64 jj = 0; jj < cols; ++jj)
            for (i64 d = 0; d < Dv_pad; ++d)
              vp[jj * Dv_pad + d] = d < p.Dv ? vb[jj * p.v.s2 + d * p.v.s3] : T(0);
          vb = vp, ldv = Dv_pad;
        }
        gemm(rows, Dv_pad, cols, st, 1, bq_pad, vb, ldv, o, Dv_pad, true,
             {p.causal ? Band::k_to_row : Band::all, off});
      }

      // Normalise once, write the output row and its log-sum-exp.
      for (i64 ii = 0; ii < rows; ++ii) {
        const i64 row = bh * p.N + i0 + ii;
        const T inv = l[ii] == T(0) ? T(0) : T(1) / l[ii];  // l = 0: no visible key
        T* out = r.out.row(b, h, i0 + ii);
        for (i64 d = 0; d < p.Dv; ++d) out[d] = o[ii * Dv_pad + d] * inv;
        r.lse[row] = l[ii] == T(0) ? neg_inf : m[ii] + std::log(l[ii]);  // NaN stays NaN
      }
    }
  }
}

template void attention_forward<float>(const AttentionProblem<float>&, ForwardResult<float>);
template void attention_forward<double>(const AttentionProblem<double>&, ForwardResult<double>);

}  // namespace NUMTRANS_ISA_NS
}  // namespace numtrans
