// The fused layer kernels (contract and formulas: layers.hpp), compiled once per instruction set.
//
// Every loop walks a row in whole vectors (attention_simd.hpp's Vec<T>, 4 to 16 lanes). The
// last, partial vector of a row is read with load_n, which fills the missing lanes with a value
// chosen so that they cannot change the result (0 for a sum, -inf for a maximum or an exp, the
// row mean where x - mean is summed), and written with store_n: no scalar tail loop to get wrong.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/attention_simd.hpp"
#include "cpu/layers.hpp"

#ifdef NUMTRANS_HAVE_OPENMP
#include <omp.h>
#endif

namespace numtrans {
namespace NUMTRANS_ISA_NS {

namespace {

template <typename T>
inline Vec<T> load_n(const T* p, i64 n, T fill) {  // lanes >= n hold `fill`
  Vec<T> v = splat(fill);
  for (i64 j = 0; j < n; ++j) v[j] = p[j];
  return v;
}
template <typename T>
inline void store_n(T* p, Vec<T> v, i64 n) {
  for (i64 j = 0; j < n; ++j) p[j] = v[j];
}
// load_n / store_n for any m <= W, with a plain vector load or store when the vector is whole.
template <typename T>
inline Vec<T> ld(const T* p, i64 m, T fill) {
  return m == Simd<T>::W ? load(p) : load_n(p, m, fill);
}
template <typename T>
inline void st(T* p, Vec<T> v, i64 m) {
  if (m == Simd<T>::W)
    store(p, v);
  else
    store_n(p, v, m);
}
template <typename T>
inline T hsum(Vec<T> v) {
  T s = T(0);
  for (int j = 0; j < Simd<T>::W; ++j) s += v[j];
  return s;
}
template <typename T>
inline T hmax(Vec<T> v) {
  T m = v[0];
  for (int j = 1; j < Simd<T>::W; ++j) m = v[j] > m ? v[j] : m;
  return m;
}

// Call body(i0, i1) on [0, n) in equal contiguous pieces, one per thread when the work is big
// enough to pay for waking threads (about 64k elements; measured on the GPT step's shapes).
template <typename F>
void parallel_ranges(i64 n, double work, F body) {
#ifdef NUMTRANS_HAVE_OPENMP
  if (work >= 65536.0 && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
      body(n * t / nt, n * (t + 1) / nt);
    }
    return;
  }
#endif
  (void)work;
  body(i64(0), n);
}

// ----------------------------------------------------------------------------------- GELU --
// Phi(x) = erfc(-x / sqrt 2) / 2, computed so that neither tail loses digits: with z = x / sqrt 2,
//   |z| < 1:  Phi = 1/2 + erf(z) / 2,   erf(z) = z P(z^2)
//   |z| >= 1: erfc(|z|) = exp(-z^2) Q(t), t = 1 / (1 + 0.47047 |z|);  Phi = erfc/2 or 1 - erfc/2
// P (degree 6) and Q (degree 8) are least-squares fits on Chebyshev nodes to erf(z)/z on [0, 1]
// and to erfc(z) exp(z^2) on [1, 10] (csrc/cpu/fit_erf.py; the substitution t is Abramowitz &
// Stegun 7.1.26's). Fit error below 3e-9; with float32 rounding the GELU is within a few ulp
// except where Phi itself is tiny (x < -4), where the rounding of z = x / sqrt 2 alone moves
// Phi by about x^2 * 6e-8 relative, as in every float32 implementation that computes z.
// Unlike 1 + erf(z), erfc never cancels: Phi(-8) keeps its digits (the NumPy reference's 1 + erf
// rounds it to 0). float64 uses the C library's erfc (one element at a time).
inline Vec<float> phi_cdf(Vec<float> x, Vec<float>* pdf) {
  using V = Vec<float>;
  const V z = x * 0.70710678118654752f;
  const V a = z < 0.0f ? -z : z;
  const V e = vexp<float>(-(z * z));  // exp(-z^2) = sqrt(2 pi) phi(x); 0 beyond |z| ~ 9.3
  *pdf = e * 0.39894228040143268f;
  const V u = z * z;
  V p = splat(7.847259126e-05f);
  for (float c : {-8.008189323e-04f, 5.188098889e-03f, -2.685369110e-02f, 1.128358225e-01f,
                  -3.761262557e-01f, 1.128379166e+00f})
    p = p * u + c;
  const V t = 1.0f / (1.0f + 0.47047f * a);
  V q = splat(9.543460922e-02f);
  for (float c : {-2.946316584e-01f, 2.327300005e-01f, -3.620616126e-03f, 2.089609795e-01f,
                  2.297391253e-01f, 2.662244472e-01f, 2.653780226e-01f, 1.738323955e-06f})
    q = q * t + c;
  const V half_erfc = 0.5f * e * q;
  const V tail = z > 0.0f ? 1.0f - half_erfc : half_erfc;
  return a < 1.0f ? 0.5f + 0.5f * (z * p) : tail;
}

inline double phi_cdf_scalar(double x, double* pdf) {
  *pdf = std::exp(-0.5 * x * x) * 0.39894228040143268;
  return 0.5 * std::erfc(-x * 0.70710678118654752);
}

}  // namespace

template <typename T>
void gelu_forward(const T* x, T* y, i64 n) {
  parallel_ranges(n, double(n), [&](i64 i0, i64 i1) {
    if constexpr (std::is_same_v<T, float>) {
      constexpr int W = Simd<float>::W;
      Vec<float> pdf;
      for (i64 i = i0; i < i1; i += W) {
        const i64 m = min64(W, i1 - i);
        const Vec<float> v = ld(x + i, m, 0.0f);
        st(y + i, v * phi_cdf(v, &pdf), m);
      }
    } else {
      double pdf;
      for (i64 i = i0; i < i1; ++i) y[i] = x[i] * phi_cdf_scalar(x[i], &pdf);
    }
  });
}

template <typename T>
void gelu_backward(const T* g, const T* x, T* dx, i64 n) {
  parallel_ranges(n, double(n), [&](i64 i0, i64 i1) {
    if constexpr (std::is_same_v<T, float>) {
      constexpr int W = Simd<float>::W;
      Vec<float> pdf;
      for (i64 i = i0; i < i1; i += W) {
        const i64 m = min64(W, i1 - i);
        const Vec<float> v = ld(x + i, m, 0.0f);
        const Vec<float> cdf = phi_cdf(v, &pdf);
        st(dx + i, ld(g + i, m, 0.0f) * (cdf + v * pdf), m);
      }
    } else {
      double pdf;
      for (i64 i = i0; i < i1; ++i) {
        const double cdf = phi_cdf_scalar(x[i], &pdf);
        dx[i] = g[i] * (cdf + x[i] * pdf);
      }
    }
  });
}

// ------------------------------------------------------------------------------ LayerNorm --
// Two passes over each row for the statistics (the mean, then the centred sum of squares: the
// one-pass E[x^2] - E[x]^2 cancels badly when |mean| >> std), a third writes y. A row of a few
// hundred numbers stays in L1 across the passes, so memory is read once.
template <typename T>
void layer_norm_forward(const T* x, const T* w, const T* b, T eps, i64 rows, i64 cols, T* y,
                        T* mean, T* rstd) {
  constexpr int W = Simd<T>::W;
  const T inv_n = T(1) / T(cols);
  parallel_ranges(rows, double(rows) * double(cols), [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      Vec<T> acc{};
      for (i64 j = 0; j < cols; j += W) acc += ld(xr + j, min64(W, cols - j), T(0));
      const T mu = hsum<T>(acc) * inv_n;
      const Vec<T> vmu = splat(mu);
      acc = Vec<T>{};
      for (i64 j = 0; j < cols; j += W) {
        const Vec<T> d = ld(xr + j, min64(W, cols - j), mu) - vmu;  // missing lanes: d = 0
        acc += d * d;
      }
      const T rs = T(1) / std::sqrt(hsum<T>(acc) * inv_n + eps);
      mean[r] = mu;
      rstd[r] = rs;
      const Vec<T> vrs = splat(rs);
      for (i64 j = 0; j < cols; j += W) {
        const i64 m = min64(W, cols - j);
        Vec<T> v = (ld(xr + j, m, mu) - vmu) * vrs;
        if (w) v = v * ld(w + j, m, T(0));
        if (b) v = v + ld(b + j, m, T(0));
        st(yr + j, v, m);
      }
    }
  });
}

// dw and db are sums over rows: each thread adds its rows into its own zeroed partial sums, and
// the partials are added in thread order at the end (so a run is repeatable for a thread count;
// the partials of a thread that got no rows stay zero).
template <typename T>
void layer_norm_backward(const T* g, const T* x, const T* w, const T* mean, const T* rstd,
                         i64 rows, i64 cols, T* dx, T* dw, T* db) {
  constexpr int W = Simd<T>::W;
  const T inv_n = T(1) / T(cols);
  int threads = 1;
#ifdef NUMTRANS_HAVE_OPENMP
  if (double(rows) * double(cols) >= 65536.0) threads = omp_get_max_threads();
#endif
  std::vector<T> partial(static_cast<std::size_t>(2 * threads * cols), T(0));  // [t][dw | db]
  parallel_ranges(rows, double(rows) * double(cols), [&](i64 r0, i64 r1) {
    int t = 0;
#ifdef NUMTRANS_HAVE_OPENMP
    t = omp_in_parallel() ? omp_get_thread_num() : 0;
#endif
    T* pdw = partial.data() + std::size_t(2 * t) * cols;
    T* pdb = pdw + cols;
    for (i64 r = r0; r < r1; ++r) {
      const T* gr = g + r * cols;
      const T* xr = x + r * cols;
      const Vec<T> vmu = splat(mean[r]), vrs = splat(rstd[r]);
      Vec<T> s1{}, s2{};  // sum dxhat, sum dxhat * xhat
      for (i64 j = 0; j < cols; j += W) {
        const i64 m = min64(W, cols - j);
        const Vec<T> gv = ld(gr + j, m, T(0));
        const Vec<T> xhat = (ld(xr + j, m, mean[r]) - vmu) * vrs;
        const Vec<T> dxhat = w ? gv * ld(w + j, m, T(0)) : gv;
        s1 += dxhat;
        s2 += dxhat * xhat;
        if (dw) st(pdw + j, ld(pdw + j, m, T(0)) + gv * xhat, m);
        if (db) st(pdb + j, ld(pdb + j, m, T(0)) + gv, m);
      }
      if (!dx) continue;
      const Vec<T> m1 = splat(hsum<T>(s1) * inv_n), m2 = splat(hsum<T>(s2) * inv_n);
      T* dr = dx + r * cols;
      for (i64 j = 0; j < cols; j += W) {
        const i64 m = min64(W, cols - j);
        const Vec<T> gv = ld(gr + j, m, T(0));
        const Vec<T> xhat = (ld(xr + j, m, mean[r]) - vmu) * vrs;
        const Vec<T> dxhat = w ? gv * ld(w + j, m, T(0)) : gv;
        st(dr + j, vrs * (dxhat - m1 - xhat * m2), m);
      }
    }
  });
  for (i64 j = 0; j < cols; ++j) {
    T sw = T(0), sb = T(0);
    for (int t = 0; t < threads; ++t) {
      sw += partial[std::size_t(2 * t) * cols + j];
      sb += partial[std::size_t(2 * t + 1) * cols + j];
    }
    if (dw) dw[j] = sw;
    if (db) db[j] = sb;
  }
}

// ----------------------------------------------------------------- softmax + cross-entropy --
// The log-sum-exp is taken after subtracting the row maximum (exp never overflows). The backward
// recomputes the probabilities as exp(x - lse) instead of storing a (rows, C) softmax.
template <typename T>
void cross_entropy_forward(const T* x, const std::int64_t* target, i64 rows, i64 cols,
                           std::int64_t ignore_index, T smoothing, T* loss, T* lse) {
  constexpr int W = Simd<T>::W;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  parallel_ranges(rows, double(rows) * double(cols), [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      Vec<T> vm = splat(neg_inf), vs{}, vx{};  // running max, sum of exp, sum of x
      for (i64 j = 0; j < cols; j += W) vm = vmax<T>(vm, ld(xr + j, min64(W, cols - j), neg_inf));
      T mx = hmax<T>(vm);
      if (mx == neg_inf) mx = T(0);  // every logit -inf: lse = -inf, as the reference gives
      const Vec<T> vmx = splat(mx);
      for (i64 j = 0; j < cols; j += W) {
        const i64 m = min64(W, cols - j);
        vs += vexp<T>(ld(xr + j, m, neg_inf) - vmx);
        if (smoothing != T(0)) vx += ld(xr + j, m, T(0));
      }
      const T l = mx + std::log(hsum<T>(vs));
      lse[r] = l;
      const std::int64_t t = target[r];
      if (t == ignore_index) {
        loss[r] = T(0);
        continue;
      }
      T value = (T(1) - smoothing) * (l - xr[t]);
      if (smoothing != T(0)) value += smoothing * (l - hsum<T>(vx) / T(cols));
      loss[r] = value;
    }
  });
}

template <typename T>
void cross_entropy_backward(const T* x, const std::int64_t* target, const T* lse,
                            const T* row_scale, i64 rows, i64 cols, T smoothing, T* dx) {
  constexpr int W = Simd<T>::W;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T uniform = smoothing / T(cols);
  parallel_ranges(rows, double(rows) * double(cols), [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      T* dr = dx + r * cols;
      const T s = row_scale[r];
      const Vec<T> vl = splat(lse[r]), vs = splat(s), vu = splat(uniform);
      for (i64 j = 0; j < cols; j += W) {
        const i64 m = min64(W, cols - j);
        st(dr + j, vs * (vexp<T>(ld(xr + j, m, neg_inf) - vl) - vu), m);
      }
      if (s != T(0)) dr[target[r]] -= s * (T(1) - smoothing);  // an ignored row has s = 0
    }
  });
}

#define NUMTRANS_INSTANTIATE_LAYERS(T)                                                        \
  template void gelu_forward<T>(const T*, T*, i64);                                           \
  template void gelu_backward<T>(const T*, const T*, T*, i64);                                \
  template void layer_norm_forward<T>(const T*, const T*, const T*, T, i64, i64, T*, T*, T*); \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, i64, \
                                       i64, T*, T*, T*);                                      \
  template void cross_entropy_forward<T>(const T*, const std::int64_t*, i64, i64,             \
                                         std::int64_t, T, T*, T*);                            \
  template void cross_entropy_backward<T>(const T*, const std::int64_t*, const T*, const T*,  \
                                          i64, i64, T, T*);
NUMTRANS_INSTANTIATE_LAYERS(float)
NUMTRANS_INSTANTIATE_LAYERS(double)

}  // namespace NUMTRANS_ISA_NS
}  // namespace numtrans
