// pybind11 bindings of numtrans._cpu. Inputs are validated in Python first; here we only
// take C-contiguous arrays of the right dtype (pybind11 copies other layouts) and release
// the GIL while the kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "cpu/softmax.hpp"

#ifdef NUMTRANS_HAVE_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

void register_elementwise(py::module_& m);  // elementwise.cpp

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
static py::array_t<T> softmax_lastdim(CArray<T> x) {
  if (x.ndim() < 1) throw std::invalid_argument("softmax: expected at least 1 dimension");
  const std::int64_t cols = x.shape(x.ndim() - 1);
  const std::int64_t rows = cols == 0 ? 0 : x.size() / cols;
  py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const T* src = x.data();
  T* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    numtrans::softmax_rows<T>(src, dst, rows, cols);
  }
  return out;
}

static int get_num_threads() {
#ifdef NUMTRANS_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

static void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1");
#ifdef NUMTRANS_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
}

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "numtrans native CPU kernels";
  m.def("softmax", &softmax_lastdim<float>, py::arg("x"), "Stable softmax over the last axis (float32).");
  m.def("softmax", &softmax_lastdim<double>, py::arg("x"), "Stable softmax over the last axis (float64).");
  register_elementwise(m);
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
#ifdef NUMTRANS_HAVE_OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
