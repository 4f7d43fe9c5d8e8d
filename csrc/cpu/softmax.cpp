// Row-wise stable softmax: subtract the row maximum before exponentiating, so that
// exp never overflows; the largest term is exp(0) = 1 and the sum is >= 1.
#include "cpu/softmax.hpp"

#include <cmath>
#include <limits>

namespace numtrans {

template <typename T>
void softmax_rows(const T* x, T* out, std::int64_t rows, std::int64_t cols) {
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
#endif
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = out + r * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t j = 0; j < cols; ++j) m = xr[j] > m ? xr[j] : m;
    if (m == -std::numeric_limits<T>::infinity()) {  // fully masked row
      for (std::int64_t j = 0; j < cols; ++j) yr[j] = T(0);
      continue;
    }
    T s = T(0);
    for (std::int64_t j = 0; j < cols; ++j) {
      yr[j] = std::exp(xr[j] - m);
      s += yr[j];
    }
    const T inv = T(1) / s;
    for (std::int64_t j = 0; j < cols; ++j) yr[j] *= inv;
  }
}

template void softmax_rows<float>(const float*, float*, std::int64_t, std::int64_t);
template void softmax_rows<double>(const double*, double*, std::int64_t, std::int64_t);

}  // namespace numtrans
