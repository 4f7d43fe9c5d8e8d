// Lesson 1: fused attention as plain scalar loops.
//
// The textbook computes S = scale * q k^T (N x M), then P = softmax(S), then out = P v, and so
// stores N x M numbers per head: 1 GiB per head at N = M = 16384 in float32. This file computes
// the same result one query row at a time with O(D) extra memory, reading each key once.
//
// The trick is the *online softmax* (Milakov & Gimelshein 2018). For one query row keep
//     m   = the largest score seen so far
//     l   = sum over seen keys of exp(s_j - m)
//     acc = sum over seen keys of exp(s_j - m) * v_j      (an un-normalised output row)
// When a new score s arrives and s > m, every term seen so far is rescaled by exp(m - s)
// (the old maximum becomes the new one); then the new key is added with weight exp(s - m).
// At the end out = acc / l and log-sum-exp = m + log(l). Subtracting the running maximum keeps
// every exponent <= 0, so nothing overflows even for scores around 1e3.
//
// The backward needs P again. Instead of storing it, recompute p_ij = exp(s_ij - lse_i) from the
// saved log-sum-exp (one number per row), and use D_i = sum_d dout_id * out_id:
//     dv_j += p_ij dout_i                 dp_ij = dout_i . v_j
//     ds_ij = p_ij (dp_ij - D_i)          (the softmax Jacobian applied to dp)
//     dq_i += scale ds_ij k_j             dk_j += scale ds_ij q_i
// Each (batch, head) is independent, so threads split (b, h) pairs and never write the same
// number: the result does not depend on the thread count.
//
// attention_forward.cpp and attention_backward.cpp do exactly this arithmetic, reorganised into
// tiles so that the inner loops become small matrix multiplies. The tests compare the two.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention.hpp"

namespace numtrans {

template <typename T>
static T dot(const T* a, std::int64_t sa, const T* b, std::int64_t sb, std::int64_t n) {
  T s = T(0);
  for (std::int64_t d = 0; d < n; ++d) s += a[d * sa] * b[d * sb];
  return s;
}

template <typename T>
void attention_forward_reference(const AttentionProblem<T>& p, ForwardResult<T> r) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const std::int64_t rows = p.B * p.H * p.N;
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp parallel
#endif
  {
    std::vector<T> acc(static_cast<std::size_t>(p.Dv));  // one output row, allocated once
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t b = row / (p.H * p.N), h = (row / p.N) % p.H, i = row % p.N;
      const T* qi = p.q.row(b, h, i);
      T m = neg_inf, l = T(0);
      for (auto& a : acc) a = T(0);
      for (std::int64_t j = 0; j < p.M; ++j) {
        if (!p.allowed(b, h, i, j)) continue;
        const T s = p.scale * dot(qi, p.q.s3, p.k.row(b, h, j), p.k.s3, p.D) + p.bias(b, h, i, j);
        if (s == neg_inf) continue;  // an additive -inf masks the key too
        if (s > m) {                 // new maximum: rescale what we have (exp(-inf) = 0 at start)
          const T alpha = std::exp(m - s);
          for (auto& a : acc) a *= alpha;
          l *= alpha;
          m = s;
        }
        const T w = std::exp(s - m);
        const T* vj = p.v.row(b, h, j);
        l += w;
        for (std::int64_t d = 0; d < p.Dv; ++d) acc[d] += w * vj[d * p.v.s3];
      }
      T* o = r.out.row(b, h, i);
      for (std::int64_t d = 0; d < p.Dv; ++d) o[d] = l == T(0) ? T(0) : acc[d] / l;
      r.lse[row] = l == T(0) ? neg_inf : m + std::log(l);
    }
  }
}

template <typename T>
void attention_backward_reference(const AttentionProblem<T>& p, const BackwardInput<T>& g,
                                  BackwardResult<T> r) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const std::int64_t heads = p.B * p.H;
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (std::int64_t bh = 0; bh < heads; ++bh) {
    const std::int64_t b = bh / p.H, h = bh % p.H;
    for (std::int64_t i = 0; i < p.N; ++i)
      for (std::int64_t d = 0; d < p.D; ++d) r.dq.row(b, h, i)[d] = T(0);
    for (std::int64_t j = 0; j < p.M; ++j) {
      for (std::int64_t d = 0; d < p.D; ++d) r.dk.row(b, h, j)[d] = T(0);
      for (std::int64_t d = 0; d < p.Dv; ++d) r.dv.row(b, h, j)[d] = T(0);
    }
    for (std::int64_t i = 0; i < p.N; ++i) {
      const T lse = g.lse[bh * p.N + i];
      if (lse == neg_inf) continue;  // a fully masked row: P = 0, so no gradient flows
      const T* qi = p.q.row(b, h, i);
      const T* doi = g.dout.row(b, h, i);
      const T Di = dot(doi, g.dout.s3, g.out.row(b, h, i), g.out.s3, p.Dv);
      for (std::int64_t j = 0; j < p.M; ++j) {
        if (!p.allowed(b, h, i, j)) continue;
        const T* kj = p.k.row(b, h, j);
        const T* vj = p.v.row(b, h, j);
        const T s = p.scale * dot(qi, p.q.s3, kj, p.k.s3, p.D) + p.bias(b, h, i, j);
        const T pij = std::exp(s - lse);  // recomputed, never stored
        if (pij == T(0)) continue;
        const T dp = dot(doi, g.dout.s3, vj, p.v.s3, p.Dv);
        const T ds = pij * (dp - Di) * p.scale;
        T *dqi = r.dq.row(b, h, i), *dkj = r.dk.row(b, h, j), *dvj = r.dv.row(b, h, j);
        for (std::int64_t d = 0; d < p.Dv; ++d) dvj[d] += pij * doi[d * g.dout.s3];
        for (std::int64_t d = 0; d < p.D; ++d) {
          dqi[d] += ds * kj[d * p.k.s3];
          dkj[d] += ds * qi[d * p.q.s3];
        }
      }
    }
  }
}

template void attention_forward_reference<float>(const AttentionProblem<float>&,
                                                 ForwardResult<float>);
template void attention_forward_reference<double>(const AttentionProblem<double>&,
                                                  ForwardResult<double>);
template void attention_backward_reference<float>(const AttentionProblem<float>&,
                                                  const BackwardInput<float>&,
                                                  BackwardResult<float>);
template void attention_backward_reference<double>(const AttentionProblem<double>&,
                                                   const BackwardInput<double>&,
                                                   BackwardResult<double>);

}  // namespace numtrans
