// Turning CUDA status codes into C++ exceptions that name the call (pybind11 shows a
// std::runtime_error as a Python RuntimeError, a std::invalid_argument as a ValueError).
// Host code only: shared by module.cpp (compiled by the C++ compiler) and the .cu files.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace numtrans {
namespace gpu {

// Throw if `status` is an error. `call` names what failed, e.g. "cudaMemcpy(q)" or
// "attention forward kernel launch", so that the Python error says where it happened.
inline void check(cudaError_t status, const std::string& call) {
  if (status != cudaSuccess) {
    // Clear the error so that the next call does not report it again. (An error raised inside
    // a kernel, such as an illegal address, is "sticky": the context stays broken regardless.)
    cudaGetLastError();
    throw std::runtime_error(call + " failed: " + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ")");
  }
}

// After a <<<...>>> launch: a bad configuration (too much shared memory, a zero-sized grid)
// is reported here; a fault while the kernel runs shows up at the next synchronisation.
inline void check_launch(const std::string& kernel) {
  check(cudaGetLastError(), kernel + " launch");
}

}  // namespace gpu
}  // namespace numtrans
