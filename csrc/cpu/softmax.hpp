// Row-wise, numerically stable softmax: the smallest real kernel of numtrans._cpu.
#pragma once
#include <cstdint>

namespace numtrans {

// out[r, :] = exp(x[r, :] - max_j x[r, j]) / sum_j exp(x[r, j] - max_j x[r, j])
// for `rows` contiguous rows of length `cols`. A row whose entries are all -inf
// (every position masked) gives zeros, never NaN.
template <typename T>
void softmax_rows(const T* x, T* out, std::int64_t rows, std::int64_t cols);

}  // namespace numtrans
