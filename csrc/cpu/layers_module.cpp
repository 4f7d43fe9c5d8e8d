// pybind11 bindings of the fused layer kernels (layers.hpp), with the run-time choice of
// instruction set. numtrans/native/layers.py validates shapes, dtypes and targets and makes
// every input C-contiguous first; the checks here are a safety net. Each function returns its
// outputs and the name of the instruction set that ran.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "cpu/layers.hpp"

#ifdef NUMTRANS_HAVE_AVX512
NUMTRANS_DECLARE_LAYERS_ISA(isa_avx512)
#endif
#ifdef NUMTRANS_HAVE_AVX2
NUMTRANS_DECLARE_LAYERS_ISA(isa_avx2)
#endif
NUMTRANS_DECLARE_LAYERS_ISA(isa_baseline)

namespace py = pybind11;
using i64 = std::int64_t;

namespace {

// Run numtrans::<isa>::call for the best instruction set allowed by `ceiling`; return its name.
#ifdef NUMTRANS_HAVE_AVX512
#define NT_TRY_AVX512(isa, call) \
  if (isa == "avx512") {         \
    numtrans::isa_avx512::call;  \
    return isa;                  \
  }
#else
#define NT_TRY_AVX512(isa, call)
#endif
#ifdef NUMTRANS_HAVE_AVX2
#define NT_TRY_AVX2(isa, call) \
  if (isa == "avx2") {         \
    numtrans::isa_avx2::call;  \
    return isa;                \
  }
#else
#define NT_TRY_AVX2(isa, call)
#endif
#define NT_DISPATCH(ceiling, call)                          \
  [&]() -> std::string {                                    \
    const std::string isa = numtrans::choose_isa(ceiling);  \
    py::gil_scoped_release release;                         \
    NT_TRY_AVX512(isa, call)                                \
    NT_TRY_AVX2(isa, call)                                  \
    numtrans::isa_baseline::call;                           \
    return std::string("baseline");                         \
  }()

template <typename T>
const T* data_of(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<T>()))
    throw std::invalid_argument(std::string(name) + ": dtype does not match the input's");
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + ": must be C-contiguous");
  return static_cast<const T*>(a.data());
}
template <typename T>
const T* optional_data(const py::object& a, const char* name, i64 size) {
  if (a.is_none()) return nullptr;
  py::array arr = a.cast<py::array>();
  if (arr.size() != size) throw std::invalid_argument(std::string(name) + ": wrong size");
  return data_of<T>(arr, name);
}
py::array like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}
bool is_double(const py::array& x) {
  if (x.dtype().is(py::dtype::of<double>())) return true;
  if (x.dtype().is(py::dtype::of<float>())) return false;
  throw std::invalid_argument("fused layer kernels take float32 or float64");
}
void expect_2d(const py::array& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + ": expected (rows, cols)");
}

template <typename T>
py::tuple gelu_forward_t(const py::array& x, const std::string& ceiling) {
  py::array y = like(x);
  const T* xp = data_of<T>(x, "x");
  T* yp = static_cast<T*>(y.mutable_data());
  const i64 n = x.size();
  const std::string used = NT_DISPATCH(ceiling, gelu_forward<T>(xp, yp, n));
  return py::make_tuple(y, used);
}

template <typename T>
py::tuple gelu_backward_t(const py::array& g, const py::array& x, const std::string& ceiling) {
  if (g.size() != x.size()) throw std::invalid_argument("gelu_backward: g and x differ in size");
  py::array dx = like(x);
  const T* gp = data_of<T>(g, "grad");
  const T* xp = data_of<T>(x, "x");
  T* dp = static_cast<T*>(dx.mutable_data());
  const i64 n = x.size();
  const std::string used = NT_DISPATCH(ceiling, gelu_backward<T>(gp, xp, dp, n));
  return py::make_tuple(dx, used);
}

template <typename T>
py::tuple layer_norm_forward_t(const py::array& x, const py::object& w, const py::object& b,
                               double eps, const std::string& ceiling) {
  expect_2d(x, "x");
  const i64 rows = x.shape(0), cols = x.shape(1);
  const T* xp = data_of<T>(x, "x");
  const T* wp = optional_data<T>(w, "weight", cols);
  const T* bp = optional_data<T>(b, "bias", cols);
  py::array y = like(x);
  py::array_t<T> mean(rows), rstd(rows);
  T* yp = static_cast<T*>(y.mutable_data());
  T* mp = mean.mutable_data();
  T* rp = rstd.mutable_data();
  const T e = static_cast<T>(eps);
  const std::string used =
      NT_DISPATCH(ceiling, layer_norm_forward<T>(xp, wp, bp, e, rows, cols, yp, mp, rp));
  return py::make_tuple(y, mean, rstd, used);
}

template <typename T>
py::tuple layer_norm_backward_t(const py::array& g, const py::array& x, const py::object& w,
                                const py::array& mean, const py::array& rstd, bool need_dx,
                                bool need_dw, bool need_db, const std::string& ceiling) {
  expect_2d(x, "x");
  const i64 rows = x.shape(0), cols = x.shape(1);
  if (g.ndim() != 2 || g.shape(0) != rows || g.shape(1) != cols)
    throw std::invalid_argument("layer_norm_backward: grad and x differ in shape");
  if (mean.size() != rows || rstd.size() != rows)
    throw std::invalid_argument("layer_norm_backward: mean and rstd need one value per row");
  const T* gp = data_of<T>(g, "grad");
  const T* xp = data_of<T>(x, "x");
  const T* wp = optional_data<T>(w, "weight", cols);
  const T* mp = data_of<T>(mean, "mean");
  const T* rp = data_of<T>(rstd, "rstd");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T *dxp = nullptr, *dwp = nullptr, *dbp = nullptr;
  if (need_dx) {
    py::array a = like(x);
    dxp = static_cast<T*>(a.mutable_data());
    dx = a;
  }
  if (need_dw) {
    py::array_t<T> a(cols);
    dwp = a.mutable_data();
    dw = a;
  }
  if (need_db) {
    py::array_t<T> a(cols);
    dbp = a.mutable_data();
    db = a;
  }
  const std::string used = NT_DISPATCH(
      ceiling, layer_norm_backward<T>(gp, xp, wp, mp, rp, rows, cols, dxp, dwp, dbp));
  return py::make_tuple(dx, dw, db, used);
}

const i64* targets_of(const py::array& target, i64 rows) {
  if (!target.dtype().is(py::dtype::of<i64>()) || !(target.flags() & py::array::c_style) ||
      target.size() != rows)
    throw std::invalid_argument("target: expected C-contiguous int64, one per row");
  return static_cast<const i64*>(target.data());
}

template <typename T>
py::tuple cross_entropy_forward_t(const py::array& x, const py::array& target, i64 ignore_index,
                                  double smoothing, const std::string& ceiling) {
  expect_2d(x, "logits");
  const i64 rows = x.shape(0), cols = x.shape(1);
  const T* xp = data_of<T>(x, "logits");
  const i64* tp = targets_of(target, rows);
  for (i64 r = 0; r < rows; ++r)
    if (tp[r] != ignore_index && (tp[r] < 0 || tp[r] >= cols))
      throw std::invalid_argument("target: class id out of range");
  py::array_t<T> loss(rows), lse(rows);
  T* lp = loss.mutable_data();
  T* sp = lse.mutable_data();
  const T eps = static_cast<T>(smoothing);
  const std::string used = NT_DISPATCH(
      ceiling, cross_entropy_forward<T>(xp, tp, rows, cols, ignore_index, eps, lp, sp));
  return py::make_tuple(loss, lse, used);
}

template <typename T>
py::tuple cross_entropy_backward_t(const py::array& x, const py::array& target,
                                   const py::array& lse, const py::array& row_scale,
                                   double smoothing, const std::string& ceiling) {
  expect_2d(x, "logits");
  const i64 rows = x.shape(0), cols = x.shape(1);
  if (lse.size() != rows || row_scale.size() != rows)
    throw std::invalid_argument("cross_entropy_backward: lse and row_scale need one per row");
  const T* xp = data_of<T>(x, "logits");
  const i64* tp = targets_of(target, rows);
  const T* lp = data_of<T>(lse, "lse");
  const T* sp = data_of<T>(row_scale, "row_scale");
  py::array dx = like(x);
  T* dp = static_cast<T*>(dx.mutable_data());
  const T eps = static_cast<T>(smoothing);
  const std::string used = NT_DISPATCH(
      ceiling, cross_entropy_backward<T>(xp, tp, lp, sp, rows, cols, eps, dp));
  return py::make_tuple(dx, used);
}

}  // namespace

void register_layers(py::module_& m) {
  m.def(
      "gelu_forward",
      [](const py::array& x, const std::string& isa) {
        return is_double(x) ? gelu_forward_t<double>(x, isa) : gelu_forward_t<float>(x, isa);
      },
      py::arg("x"), py::arg("isa") = "", "Exact GELU x Phi(x) -> (y, isa used).");
  m.def(
      "gelu_backward",
      [](const py::array& g, const py::array& x, const std::string& isa) {
        return is_double(x) ? gelu_backward_t<double>(g, x, isa)
                            : gelu_backward_t<float>(g, x, isa);
      },
      py::arg("grad"), py::arg("x"), py::arg("isa") = "",
      "GELU backward g (Phi(x) + x phi(x)) -> (dx, isa used).");
  m.def(
      "layer_norm_forward",
      [](const py::array& x, const py::object& w, const py::object& b, double eps,
         const std::string& isa) {
        return is_double(x) ? layer_norm_forward_t<double>(x, w, b, eps, isa)
                            : layer_norm_forward_t<float>(x, w, b, eps, isa);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("isa") = "",
      "LayerNorm over the last axis of (rows, cols) -> (y, mean, rstd, isa used).");
  m.def(
      "layer_norm_backward",
      [](const py::array& g, const py::array& x, const py::object& w, const py::array& mean,
         const py::array& rstd, bool need_dx, bool need_dw, bool need_db,
         const std::string& isa) {
        return is_double(x) ? layer_norm_backward_t<double>(g, x, w, mean, rstd, need_dx,
                                                            need_dw, need_db, isa)
                            : layer_norm_backward_t<float>(g, x, w, mean, rstd, need_dx,
                                                           need_dw, need_db, isa);
      },
      py::arg("grad"), py::arg("x"), py::arg("weight"), py::arg("mean"), py::arg("rstd"),
      py::arg("need_dx") = true, py::arg("need_dw") = true, py::arg("need_db") = true,
      py::arg("isa") = "", "LayerNorm backward -> (dx, dw, db, isa used); None where not needed.");
  m.def(
      "cross_entropy_forward",
      [](const py::array& x, const py::array& target, i64 ignore_index, double smoothing,
         const std::string& isa) {
        return is_double(x)
                   ? cross_entropy_forward_t<double>(x, target, ignore_index, smoothing, isa)
                   : cross_entropy_forward_t<float>(x, target, ignore_index, smoothing, isa);
      },
      py::arg("logits"), py::arg("target"), py::arg("ignore_index"), py::arg("label_smoothing"),
      py::arg("isa") = "", "Softmax cross-entropy per row -> (loss, lse, isa used).");
  m.def(
      "cross_entropy_backward",
      [](const py::array& x, const py::array& target, const py::array& lse,
         const py::array& row_scale, double smoothing, const std::string& isa) {
        return is_double(x)
                   ? cross_entropy_backward_t<double>(x, target, lse, row_scale, smoothing, isa)
                   : cross_entropy_backward_t<float>(x, target, lse, row_scale, smoothing, isa);
      },
      py::arg("logits"), py::arg("target"), py::arg("lse"), py::arg("row_scale"),
      py::arg("label_smoothing"), py::arg("isa") = "",
      "Softmax cross-entropy backward, each row scaled by row_scale -> (dlogits, isa used).");
}
