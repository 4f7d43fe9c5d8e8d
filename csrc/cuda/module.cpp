// pybind11 bindings of numtrans._cuda. Every CUDA call is checked and turned into a Python
// RuntimeError naming the call. NumPy arrays are copied to the device and back.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "cuda/softmax.cuh"

namespace py = pybind11;

static void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorString(status));
}

static int device_count() {
  int n = 0;
  cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error: no driver / no device is not fatal here
    return 0;
  }
  return n;
}

template <typename T>
static py::array_t<T> softmax_lastdim(py::array_t<T, py::array::c_style | py::array::forcecast> x) {
  if (x.ndim() < 1) throw std::invalid_argument("softmax: expected at least 1 dimension");
  const long long cols = x.shape(x.ndim() - 1);
  const long long rows = cols == 0 ? 0 : x.size() / cols;
  py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const size_t bytes = static_cast<size_t>(x.size()) * sizeof(T);
  T* d_x = nullptr;
  T* d_y = nullptr;
  check(cudaMalloc(&d_x, bytes > 0 ? bytes : 1), "cudaMalloc");
  cudaError_t st = cudaMalloc(&d_y, bytes > 0 ? bytes : 1);
  if (st != cudaSuccess) { cudaFree(d_x); check(st, "cudaMalloc"); }
  st = cudaMemcpy(d_x, x.data(), bytes, cudaMemcpyHostToDevice);
  if (st == cudaSuccess) st = numtrans::softmax_rows_cuda<T>(d_x, d_y, rows, cols);
  const char* where = st == cudaSuccess ? "cudaMemcpy" : "softmax_rows_kernel launch";
  if (st == cudaSuccess) st = cudaMemcpy(out.mutable_data(), d_y, bytes, cudaMemcpyDeviceToHost);
  cudaFree(d_x);
  cudaFree(d_y);
  check(st, where);
  return out;
}

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "numtrans native CUDA kernels";
  m.def("device_count", &device_count, "Number of visible CUDA devices (0 when none or no driver).");
  m.def("softmax", &softmax_lastdim<float>, py::arg("x"));
  m.def("softmax", &softmax_lastdim<double>, py::arg("x"));
}
