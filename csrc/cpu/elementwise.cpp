// Elementwise special functions NumPy lacks. erf is needed by the exact GELU,
// GELU(x) = x * (1 + erf(x / sqrt(2))) / 2; the C library's erf is accurate to ~1 ulp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace py = pybind11;

template <typename T>
static py::array_t<T> erf_array(py::array_t<T, py::array::c_style | py::array::forcecast> x) {
  py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const T* src = x.data();
  T* dst = out.mutable_data();
  const std::int64_t n = x.size();
  {
    py::gil_scoped_release release;
#ifdef NUMTRANS_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (n > 65536)
#endif
    for (std::int64_t i = 0; i < n; ++i) dst[i] = std::erf(src[i]);
  }
  return out;
}

void register_elementwise(py::module_& m) {
  m.def("erf", &erf_array<float>, py::arg("x"), "Error function, elementwise (float32).");
  m.def("erf", &erf_array<double>, py::arg("x"), "Error function, elementwise (float64).");
}
