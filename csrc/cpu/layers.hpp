// Fused layer kernels on the CPU: GELU, LayerNorm, and softmax + cross-entropy, each forward and
// backward in one pass over memory.
//
// Why: in a small GPT's training step these three run on the biggest activations (GELU on
// (B, T, 4C), LayerNorm on (B, T, C), the loss on (B, T, V)), and the NumPy versions
// (numtrans/functional/layers.py, losses.py, numtrans/ops/elementwise.py) make several
// full-size temporaries each: the time goes into memory traffic, not arithmetic. Each kernel
// here reads its inputs once and writes its outputs once. The NumPy functions stay the
// reference: tests/test_native_layers.py checks these kernels against them with hypothesis, in
// float32 and float64.
//
// Formulas (n = cols, one row at a time; every array is C-contiguous):
//   gelu        y = x Phi(x),  dx = g (Phi(x) + x phi(x)),  Phi the N(0, 1) CDF, phi its density
//   layer_norm  mean = sum x / n,  var = sum (x - mean)^2 / n,  rstd = 1 / sqrt(var + eps)
//               xhat = (x - mean) rstd,  y = xhat w + b
//               dxhat = g w,  dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
//               dw = sum over rows of g xhat,  db = sum over rows of g
//   cross_entropy (label smoothing eps, C classes, target t)
//               lse = log sum_c exp(x_c)
//               loss = (1 - eps) (lse - x_t) + eps (lse - mean_c x_c)      (0 if t is ignored)
//               dx_c = s_row (exp(x_c - lse) - eps / C - (1 - eps) [c == t])
//   where s_row is the incoming gradient of that row's loss (0 for an ignored row).
// The backward passes recompute what they need from the saved inputs (x, mean, rstd, lse)
// instead of keeping full-size intermediates, as PyTorch's kernels do.
#pragma once
#include <cstdint>
#include <string>

namespace numtrans {

// Instruction sets compiled into this module and usable on this CPU, best first, and the best
// one no wider than `ceiling` ("" = no ceiling). Defined in attention_dispatch.cpp.
std::string choose_isa(const std::string& ceiling);

}  // namespace numtrans

// Like the attention kernels, layers_kernels.cpp is compiled once per instruction set into its
// own namespace (numtrans::isa_avx512, isa_avx2, isa_baseline); layers_module.cpp picks one.
#define NUMTRANS_DECLARE_LAYERS_ISA(ns)                                                       \
  namespace numtrans {                                                                        \
  namespace ns {                                                                              \
  template <typename T>                                                                       \
  void gelu_forward(const T* x, T* y, std::int64_t n);                                        \
  template <typename T>                                                                       \
  void gelu_backward(const T* g, const T* x, T* dx, std::int64_t n);                          \
  template <typename T>                                                                       \
  void layer_norm_forward(const T* x, const T* w, const T* b, T eps, std::int64_t rows,       \
                          std::int64_t cols, T* y, T* mean, T* rstd);                         \
  template <typename T>                                                                       \
  void layer_norm_backward(const T* g, const T* x, const T* w, const T* mean, const T* rstd,  \
                           std::int64_t rows, std::int64_t cols, T* dx, T* dw, T* db);        \
  template <typename T>                                                                       \
  void cross_entropy_forward(const T* x, const std::int64_t* target, std::int64_t rows,       \
                             std::int64_t cols, std::int64_t ignore_index, T smoothing,       \
                             T* loss, T* lse);                                                \
  template <typename T>                                                                       \
  void cross_entropy_backward(const T* x, const std::int64_t* target, const T* lse,           \
                              const T* row_scale, std::int64_t rows, std::int64_t cols,       \
                              T smoothing, T* dx);                                            \
  }                                                                                           \
  }
