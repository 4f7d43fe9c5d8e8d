// pybind11 bindings of numtrans._cuda. Every CUDA call is checked and turned into a Python
// RuntimeError naming the call (cuda/check.hpp).
//
// Two ways in:
//   * NumPy arrays (attention_forward / attention_backward, the same arguments and results as
//     numtrans._cpu's, so that numtrans.native.attention's backend="cuda" works unchanged):
//     inputs are copied to the GPU, the kernels run, results are copied back. Convenient, and
//     dominated by the copies for small problems.
//   * raw device pointers (attention_forward_device / attention_backward_device), used by
//     numtrans/native/cuda.py for CuPy arrays and torch CUDA tensors: nothing is copied or
//     allocated here (the caller passes the outputs and the workspace), and the kernels are
//     queued on the caller's stream; they return before the kernels finish.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/attention.cuh"
#include "cuda/check.hpp"
#include "cuda/softmax.cuh"

namespace py = pybind11;
namespace gpu = numtrans::gpu;
using gpu::check;

static int device_count() {
  int n = 0;
  cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the error: no driver / no device is not fatal here
    return 0;
  }
  return n;
}

// Device memory owned by one call, freed however the call ends.
class DeviceBuffer {
 public:
  DeviceBuffer(std::size_t bytes, const std::string& what) {
    if (bytes > 0) check(cudaMalloc(&ptr_, bytes), "cudaMalloc(" + what + ")");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
static py::array_t<T> softmax_lastdim(CArray<T> x) {
  if (x.ndim() < 1) throw std::invalid_argument("softmax: expected at least 1 dimension");
  const long long cols = x.shape(x.ndim() - 1);
  const long long rows = cols == 0 ? 0 : x.size() / cols;
  py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const std::size_t bytes = static_cast<std::size_t>(x.size()) * sizeof(T);
  const T* src = x.data();
  T* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    DeviceBuffer d_x(bytes, "x"), d_y(bytes, "softmax output");
    check(cudaMemcpy(d_x.as<T>(), src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy(x to device)");
    check(numtrans::softmax_rows_cuda<T>(d_x.as<T>(), d_y.as<T>(), rows, cols),
          "softmax_rows_kernel launch");
    check(cudaDeviceSynchronize(), "softmax_rows_kernel (running)");
    check(cudaMemcpy(dst, d_y.as<T>(), bytes, cudaMemcpyDeviceToHost), "cudaMemcpy(softmax output)");
  }
  return out;
}

// ------------------------------------------------------------------- NumPy arrays in, out --
// numtrans/native/attention.py has validated shapes and dtypes, and broadcast the mask to
// (B, H, N, M) as a view with zero strides; the checks here are a safety net.

template <typename T>
static CArray<T> c_array(const py::array& a, const char* name) {
  auto c = CArray<T>::ensure(a);  // copies only arrays that are not C-contiguous T already
  if (!c) throw std::invalid_argument(std::string(name) + ": cannot be read as an array of q's dtype");
  if (c.ndim() != 4) throw std::invalid_argument(std::string(name) + ": expected 4 dimensions");
  return c;
}

static void expect_shape(const py::array& a, const char* name, std::int64_t d0, std::int64_t d1,
                         std::int64_t d2, std::int64_t d3) {
  if (a.shape(0) != d0 || a.shape(1) != d1 || a.shape(2) != d2 || a.shape(3) != d3)
    throw std::invalid_argument(std::string(name) + ": shape does not match the other inputs");
}

// A C-contiguous (B, H, R, C) device array seen as a View4.
template <typename T>
static gpu::View4<T> contiguous_view(const T* data, std::int64_t H, std::int64_t R,
                                     std::int64_t C) {
  gpu::View4<T> v;
  v.data = data;
  v.s3 = 1, v.s2 = C, v.s1 = R * C, v.s0 = H * R * C;
  return v;
}

// The mask's distinct entries only: a broadcast (B, H, N, M) view with zero strides is gathered
// into a small C-contiguous host buffer (a (B, 1, 1, M) key-padding mask stays B x M bytes), and
// the device view gets zero strides on the broadcast dimensions again.
struct HostMask {
  int kind = gpu::kNoMask;
  std::vector<unsigned char> bytes;
  std::int64_t strides[4] = {0, 0, 0, 0};  // elements, for the device copy
};

template <typename T>
static HostMask gather_mask(const py::object& mask, std::int64_t B, std::int64_t H,
                            std::int64_t N, std::int64_t M) {
  HostMask hm;
  if (mask.is_none()) return hm;
  py::array m = mask.cast<py::array>();
  if (m.ndim() != 4) throw std::invalid_argument("attn_mask: expected 4 dimensions");
  expect_shape(m, "attn_mask", B, H, N, M);
  std::size_t elem;
  if (m.dtype().is(py::dtype::of<bool>())) {
    hm.kind = gpu::kBoolMask, elem = 1;
  } else if (m.dtype().is(py::dtype::of<T>())) {
    hm.kind = gpu::kAddMask, elem = sizeof(T);
  } else {
    throw std::invalid_argument("attn_mask: expected bool or the dtype of q");
  }
  std::int64_t n[4], total = 1;
  for (int d = 0; d < 4; ++d) {
    n[d] = m.strides(d) == 0 || m.shape(d) == 1 ? 1 : m.shape(d);
    total *= n[d];
  }
  std::int64_t stride = 1;
  for (int d = 3; d >= 0; --d) {
    hm.strides[d] = n[d] == 1 ? 0 : stride;
    stride *= n[d];
  }
  hm.bytes.resize(static_cast<std::size_t>(total) * elem);
  const auto* base = static_cast<const unsigned char*>(m.data());
  unsigned char* dst = hm.bytes.data();
  for (std::int64_t a = 0; a < n[0]; ++a)
    for (std::int64_t b = 0; b < n[1]; ++b)
      for (std::int64_t c = 0; c < n[2]; ++c)
        for (std::int64_t d = 0; d < n[3]; ++d, dst += elem)
          std::memcpy(dst,
                      base + a * m.strides(0) + b * m.strides(1) + c * m.strides(2) +
                          d * m.strides(3),
                      elem);
  return hm;
}

template <typename T>
static void set_mask(gpu::Problem<T>& p, const HostMask& hm, const void* device_data) {
  p.mask_kind = hm.kind;
  if (hm.kind == gpu::kBoolMask) {
    p.mask_bool.data = static_cast<const std::uint8_t*>(device_data);
    p.mask_bool.s0 = hm.strides[0], p.mask_bool.s1 = hm.strides[1];
    p.mask_bool.s2 = hm.strides[2], p.mask_bool.s3 = hm.strides[3];
  } else if (hm.kind == gpu::kAddMask) {
    p.mask_add.data = static_cast<const T*>(device_data);
    p.mask_add.s0 = hm.strides[0], p.mask_add.s1 = hm.strides[1];
    p.mask_add.s2 = hm.strides[2], p.mask_add.s3 = hm.strides[3];
  }
}

static void to_device(void* dst, const void* src, std::size_t bytes, const char* name) {
  if (bytes > 0)
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice),
          std::string("cudaMemcpy(") + name + " to device)");
}
static void to_host(void* dst, const void* src, std::size_t bytes, const char* name) {
  if (bytes > 0)
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost),
          std::string("cudaMemcpy(") + name + " to host)");
}

// "" or "atomic": dQ by atomicAdd; "deterministic": the separate dQ kernel. (The name `isa`
// keeps numtrans._cpu's signature.)
static bool deterministic_variant(const std::string& variant, bool reference) {
  if (reference)
    throw std::invalid_argument(
        "the cuda backend has no scalar reference kernel (kernel='reference' is a cpu option)");
  if (variant.empty() || variant == "atomic") return false;
  if (variant == "deterministic") return true;
  throw std::invalid_argument("unknown cuda kernel variant '" + variant +
                              "'; expected 'atomic' or 'deterministic'");
}

template <typename T>
static std::size_t nbytes(const py::array& a) {
  return static_cast<std::size_t>(a.size()) * sizeof(T);
}

template <typename T>
static py::tuple forward_numpy(const py::array& q_in, const py::array& k_in,
                               const py::array& v_in, const py::object& mask, bool causal,
                               double scale) {
  const CArray<T> q = c_array<T>(q_in, "q"), k = c_array<T>(k_in, "k"), v = c_array<T>(v_in, "v");
  gpu::Problem<T> p;
  p.B = q.shape(0), p.H = q.shape(1), p.N = q.shape(2), p.D = q.shape(3);
  p.M = k.shape(2), p.Dv = v.shape(3);
  expect_shape(k, "k", p.B, p.H, p.M, p.D);
  expect_shape(v, "v", p.B, p.H, p.M, p.Dv);
  const HostMask hm = gather_mask<T>(mask, p.B, p.H, p.N, p.M);
  p.causal = causal, p.scale = scale;
  py::array_t<T> out({p.B, p.H, p.N, p.Dv});
  py::array_t<T> lse({p.B, p.H, p.N});
  const T *hq = q.data(), *hk = k.data(), *hv = v.data();
  T *hout = out.mutable_data(), *hlse = lse.mutable_data();
  const std::size_t bq = nbytes<T>(q), bk = nbytes<T>(k), bv = nbytes<T>(v);
  const std::size_t bout = nbytes<T>(out), blse = nbytes<T>(lse);
  {
    py::gil_scoped_release release;
    DeviceBuffer dq(bq, "q"), dk(bk, "k"), dv(bv, "v"), dm(hm.bytes.size(), "attn_mask"),
        dout(bout, "out"), dlse(blse, "lse");
    to_device(dq.as<T>(), hq, bq, "q");
    to_device(dk.as<T>(), hk, bk, "k");
    to_device(dv.as<T>(), hv, bv, "v");
    to_device(dm.as<void>(), hm.bytes.data(), hm.bytes.size(), "attn_mask");
    p.q = contiguous_view<T>(dq.as<T>(), p.H, p.N, p.D);
    p.k = contiguous_view<T>(dk.as<T>(), p.H, p.M, p.D);
    p.v = contiguous_view<T>(dv.as<T>(), p.H, p.M, p.Dv);
    set_mask(p, hm, dm.as<void>());
    gpu::attention_forward<T>(p, dout.as<T>(), dlse.as<T>(), nullptr);
    check(cudaDeviceSynchronize(), "attention forward kernel (running)");
    to_host(hout, dout.as<T>(), bout, "out");
    to_host(hlse, dlse.as<T>(), blse, "lse");
  }
  return py::make_tuple(out, lse, "cuda");
}

template <typename T>
static py::tuple backward_numpy(const py::array& dout_in, const py::array& q_in,
                                const py::array& k_in, const py::array& v_in,
                                const py::array& out_in, const py::array& lse_in,
                                const py::object& mask, bool causal, double scale,
                                bool deterministic) {
  const CArray<T> q = c_array<T>(q_in, "q"), k = c_array<T>(k_in, "k"), v = c_array<T>(v_in, "v");
  const CArray<T> g = c_array<T>(dout_in, "grad_out"), o = c_array<T>(out_in, "out");
  gpu::Problem<T> p;
  p.B = q.shape(0), p.H = q.shape(1), p.N = q.shape(2), p.D = q.shape(3);
  p.M = k.shape(2), p.Dv = v.shape(3);
  expect_shape(k, "k", p.B, p.H, p.M, p.D);
  expect_shape(v, "v", p.B, p.H, p.M, p.Dv);
  expect_shape(g, "grad_out", p.B, p.H, p.N, p.Dv);
  expect_shape(o, "out", p.B, p.H, p.N, p.Dv);
  auto lse = py::array_t<T, py::array::c_style>::ensure(lse_in);
  if (!lse || lse.ndim() != 3 || lse.shape(0) != p.B || lse.shape(1) != p.H ||
      lse.shape(2) != p.N)
    throw std::invalid_argument("lse: expected shape (B, H, N) and the dtype of q");
  const HostMask hm = gather_mask<T>(mask, p.B, p.H, p.N, p.M);
  p.causal = causal, p.scale = scale;
  py::array_t<T> dq({p.B, p.H, p.N, p.D}), dk({p.B, p.H, p.M, p.D}), dv({p.B, p.H, p.M, p.Dv});
  const T *hq = q.data(), *hk = k.data(), *hv = v.data(), *hg = g.data(), *ho = o.data(),
          *hlse = lse.data();
  T *hdq = dq.mutable_data(), *hdk = dk.mutable_data(), *hdv = dv.mutable_data();
  const std::size_t bq = nbytes<T>(q), bk = nbytes<T>(k), bv = nbytes<T>(v), bg = nbytes<T>(g),
                    blse = nbytes<T>(lse);
  const std::size_t bws =
      static_cast<std::size_t>(gpu::backward_workspace_elems(p.B, p.H, p.N)) * sizeof(T);
  {
    py::gil_scoped_release release;
    DeviceBuffer dq_(bq, "q"), dk_(bk, "k"), dv_(bv, "v"), dg(bg, "grad_out"), do_(bg, "out"),
        dlse(blse, "lse"), dm(hm.bytes.size(), "attn_mask"), gq(bq, "dq"), gk(bk, "dk"),
        gv(bv, "dv"), ws(bws, "workspace");
    to_device(dq_.as<T>(), hq, bq, "q");
    to_device(dk_.as<T>(), hk, bk, "k");
    to_device(dv_.as<T>(), hv, bv, "v");
    to_device(dg.as<T>(), hg, bg, "grad_out");
    to_device(do_.as<T>(), ho, bg, "out");
    to_device(dlse.as<T>(), hlse, blse, "lse");
    to_device(dm.as<void>(), hm.bytes.data(), hm.bytes.size(), "attn_mask");
    p.q = contiguous_view<T>(dq_.as<T>(), p.H, p.N, p.D);
    p.k = contiguous_view<T>(dk_.as<T>(), p.H, p.M, p.D);
    p.v = contiguous_view<T>(dv_.as<T>(), p.H, p.M, p.Dv);
    set_mask(p, hm, dm.as<void>());
    gpu::attention_backward<T>(p, contiguous_view<T>(dg.as<T>(), p.H, p.N, p.Dv),
                               contiguous_view<T>(do_.as<T>(), p.H, p.N, p.Dv), dlse.as<T>(),
                               gq.as<T>(), gk.as<T>(), gv.as<T>(), ws.as<T>(), deterministic,
                               nullptr);
    check(cudaDeviceSynchronize(), "attention backward kernels (running)");
    to_host(hdq, gq.as<T>(), bq, "dq");
    to_host(hdk, gk.as<T>(), bk, "dk");
    to_host(hdv, gv.as<T>(), bv, "dv");
  }
  return py::make_tuple(dq, dk, dv, deterministic ? "cuda:deterministic" : "cuda:atomic");
}

static bool is_float64(const py::array& q) {
  if (q.dtype().is(py::dtype::of<double>())) return true;
  if (q.dtype().is(py::dtype::of<float>())) return false;
  throw std::invalid_argument("attention: q must be float32 or float64");
}

// `out` / `dq`, `dk`, `dv` (as in numtrans._cpu): arrays to return the results in. The results
// come back from the GPU contiguous; they are then copied into the given arrays on the host.
static py::object into(const py::object& given, const py::object& result) {
  if (given.is_none()) return result;
  given.attr("__setitem__")(py::ellipsis(), result);
  return given;
}

static py::tuple attention_forward(const py::array& q, const py::array& k, const py::array& v,
                                   const py::object& mask, bool causal, double scale,
                                   const std::string& isa, bool reference,
                                   const py::object& out) {
  deterministic_variant(isa, reference);  // validates; the forward is always deterministic
  py::tuple r = is_float64(q) ? forward_numpy<double>(q, k, v, mask, causal, scale)
                              : forward_numpy<float>(q, k, v, mask, causal, scale);
  return py::make_tuple(into(out, r[0]), r[1], r[2]);
}

static py::tuple attention_backward(const py::array& dout, const py::array& q,
                                    const py::array& k, const py::array& v, const py::array& out,
                                    const py::array& lse, const py::object& mask, bool causal,
                                    double scale, const std::string& isa, bool reference,
                                    const py::object& dq, const py::object& dk,
                                    const py::object& dv) {
  const bool det = deterministic_variant(isa, reference);
  py::tuple r =
      is_float64(q) ? backward_numpy<double>(dout, q, k, v, out, lse, mask, causal, scale, det)
                    : backward_numpy<float>(dout, q, k, v, out, lse, mask, causal, scale, det);
  return py::make_tuple(into(dq, r[0]), into(dk, r[1]), into(dv, r[2]), r[3]);
}

// ---------------------------------------------------------------- device pointers in, out --
// numtrans/native/cuda.py checks shapes and dtypes and allocates the outputs; here we check
// that every pointer is GPU memory on one device, select that device, and queue the kernels.
using Shape6 = std::array<std::int64_t, 6>;                       // B, H, N, M, D, Dv
using Strided = std::tuple<std::uintptr_t, std::array<std::int64_t, 4>>;  // pointer, strides
using MaskArg = std::optional<std::tuple<std::string, std::uintptr_t, std::array<std::int64_t, 4>>>;

static int device_of(std::uintptr_t ptr, const char* name) {
  cudaPointerAttributes attr{};
  check(cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr)),
        std::string("cudaPointerGetAttributes(") + name + ")");
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw std::invalid_argument(std::string(name) + " is not GPU memory");
  return attr.device;
}

// Selects the device of q's memory for the duration of one call, checking the other pointers.
class DeviceGuard {
 public:
  DeviceGuard(const std::vector<std::pair<std::uintptr_t, const char*>>& pointers) {
    int device = -1;
    const char* first = nullptr;
    for (const auto& [ptr, name] : pointers) {
      if (ptr == 0) continue;  // an empty array
      const int d = device_of(ptr, name);
      if (device < 0) {
        device = d, first = name;
      } else if (d != device) {
        throw std::invalid_argument(std::string(name) + " is on GPU " + std::to_string(d) +
                                    " but " + first + " on GPU " + std::to_string(device));
      }
    }
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device >= 0 && device != previous_) {
      check(cudaSetDevice(device), "cudaSetDevice");
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

template <typename T>
static gpu::View4<T> view_of(const Strided& s) {
  gpu::View4<T> v;
  v.data = reinterpret_cast<const T*>(std::get<0>(s));
  const auto& st = std::get<1>(s);
  v.s0 = st[0], v.s1 = st[1], v.s2 = st[2], v.s3 = st[3];
  return v;
}

template <typename T>
static gpu::Problem<T> device_problem(const Shape6& shape, const Strided& q, const Strided& k,
                                      const Strided& v, const MaskArg& mask, bool causal,
                                      double scale) {
  gpu::Problem<T> p;
  p.B = shape[0], p.H = shape[1], p.N = shape[2], p.M = shape[3], p.D = shape[4], p.Dv = shape[5];
  for (auto x : shape)
    if (x < 0) throw std::invalid_argument("shape: dimensions must be >= 0");
  p.q = view_of<T>(q), p.k = view_of<T>(k), p.v = view_of<T>(v);
  if (mask) {
    const auto& [kind, ptr, st] = *mask;
    if (kind == "bool") {
      p.mask_kind = gpu::kBoolMask;
      p.mask_bool = view_of<std::uint8_t>(Strided{ptr, st});
    } else if (kind == "add") {
      p.mask_kind = gpu::kAddMask;
      p.mask_add = view_of<T>(Strided{ptr, st});
    } else {
      throw std::invalid_argument("mask kind must be 'bool' or 'add', got '" + kind + "'");
    }
  }
  p.causal = causal, p.scale = scale;
  return p;
}

static bool device_dtype_is_f64(const std::string& dtype) {
  if (dtype == "float64") return true;
  if (dtype == "float32") return false;
  throw std::invalid_argument("dtype must be 'float32' or 'float64', got '" + dtype + "'");
}

static std::uintptr_t mask_ptr(const MaskArg& mask) { return mask ? std::get<1>(*mask) : 0; }

static void forward_device(const std::string& dtype, const Shape6& shape, const Strided& q,
                           const Strided& k, const Strided& v, const MaskArg& mask, bool causal,
                           double scale, std::uintptr_t out, std::uintptr_t lse,
                           std::uintptr_t stream) {
  const bool f64 = device_dtype_is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard({{std::get<0>(q), "q"}, {std::get<0>(k), "k"}, {std::get<0>(v), "v"},
                     {mask_ptr(mask), "attn_mask"}, {out, "out"}, {lse, "lse"}});
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  if (f64)
    gpu::attention_forward<double>(device_problem<double>(shape, q, k, v, mask, causal, scale),
                                   reinterpret_cast<double*>(out), reinterpret_cast<double*>(lse),
                                   st);
  else
    gpu::attention_forward<float>(device_problem<float>(shape, q, k, v, mask, causal, scale),
                                  reinterpret_cast<float*>(out), reinterpret_cast<float*>(lse), st);
}

template <typename T>
static void backward_device_t(const Shape6& shape, const Strided& dout, const Strided& q,
                              const Strided& k, const Strided& v, const Strided& out,
                              std::uintptr_t lse, const MaskArg& mask, bool causal, double scale,
                              std::uintptr_t dq, std::uintptr_t dk, std::uintptr_t dv,
                              std::uintptr_t workspace, bool deterministic, cudaStream_t stream) {
  gpu::attention_backward<T>(device_problem<T>(shape, q, k, v, mask, causal, scale),
                             view_of<T>(dout), view_of<T>(out), reinterpret_cast<const T*>(lse),
                             reinterpret_cast<T*>(dq), reinterpret_cast<T*>(dk),
                             reinterpret_cast<T*>(dv), reinterpret_cast<T*>(workspace),
                             deterministic, stream);
}

static void backward_device(const std::string& dtype, const Shape6& shape, const Strided& dout,
                            const Strided& q, const Strided& k, const Strided& v,
                            const Strided& out, std::uintptr_t lse, const MaskArg& mask,
                            bool causal, double scale, std::uintptr_t dq, std::uintptr_t dk,
                            std::uintptr_t dv, std::uintptr_t workspace, bool deterministic,
                            std::uintptr_t stream) {
  const bool f64 = device_dtype_is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard({{std::get<0>(q), "q"}, {std::get<0>(k), "k"}, {std::get<0>(v), "v"},
                     {std::get<0>(dout), "grad_out"}, {std::get<0>(out), "out"}, {lse, "lse"},
                     {mask_ptr(mask), "attn_mask"}, {dq, "dq"}, {dk, "dk"}, {dv, "dv"},
                     {workspace, "workspace"}});
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  if (f64)
    backward_device_t<double>(shape, dout, q, k, v, out, lse, mask, causal, scale, dq, dk, dv,
                              workspace, deterministic, st);
  else
    backward_device_t<float>(shape, dout, q, k, v, out, lse, mask, causal, scale, dq, dk, dv,
                             workspace, deterministic, st);
}

static py::dict attention_tiles(const std::string& dtype, int head_dim) {
  const gpu::KernelTiles t = gpu::attention_tiles(device_dtype_is_f64(dtype) ? 8 : 4, head_dim);
  py::dict d;
  d["head_dim_padded"] = t.head_dim_padded;
  d["threads"] = t.threads;
  d["forward"] = py::dict(py::arg("queries") = t.fwd_q, py::arg("keys") = t.fwd_k,
                          py::arg("smem_bytes") = t.fwd_smem);
  d["backward_kv"] = py::dict(py::arg("keys") = t.bwd_k, py::arg("queries") = t.bwd_q,
                              py::arg("smem_bytes") = t.bwd_smem);
  d["backward_dq"] = py::dict(py::arg("queries") = t.dq_q, py::arg("keys") = t.dq_k,
                              py::arg("smem_bytes") = t.dq_smem);
  return d;
}

static std::string device_name(int device) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "numtrans native CUDA kernels";
  m.def("device_count", &device_count, "Number of visible CUDA devices (0 when none or no driver).");
  m.def("device_name", &device_name, py::arg("device") = 0, "The name of a CUDA device.");
  m.def("softmax", &softmax_lastdim<float>, py::arg("x"));
  m.def("softmax", &softmax_lastdim<double>, py::arg("x"));
  m.def("attention_forward", &attention_forward, py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("mask"), py::arg("causal"), py::arg("scale"), py::arg("isa") = "",
        py::arg("reference") = false, py::arg("out") = py::none(),
        "Fused attention forward on NumPy arrays (copied to the GPU and back) -> (out (B,H,N,Dv), "
        "lse (B,H,N), 'cuda'). Same arguments as numtrans._cpu.attention_forward; the mask is "
        "pre-broadcast to (B,H,N,M).");
  m.def("attention_backward", &attention_backward, py::arg("grad_out"), py::arg("q"),
        py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("mask"),
        py::arg("causal"), py::arg("scale"), py::arg("isa") = "", py::arg("reference") = false,
        py::arg("dq") = py::none(), py::arg("dk") = py::none(), py::arg("dv") = py::none(),
        "Fused attention backward on NumPy arrays -> (dq, dk, dv, variant used). isa: '' or "
        "'atomic' (dQ by atomicAdd) or 'deterministic' (bitwise repeatable dQ).");
  m.def("attention_forward_device", &forward_device, py::arg("dtype"), py::arg("shape"),
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("causal"),
        py::arg("scale"), py::arg("out"), py::arg("lse"), py::arg("stream") = 0,
        "Queue the forward on `stream` for device pointers. shape = (B, H, N, M, D, Dv); q, k, v "
        "= (pointer, strides in elements); mask = None or ('bool' | 'add', pointer, strides) of a "
        "(B, H, N, M) view; out (B,H,N,Dv) and lse (B,H,N) C-contiguous.");
  m.def("attention_backward_device", &backward_device, py::arg("dtype"), py::arg("shape"),
        py::arg("grad_out"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"),
        py::arg("lse"), py::arg("mask"), py::arg("causal"), py::arg("scale"), py::arg("dq"),
        py::arg("dk"), py::arg("dv"), py::arg("workspace"), py::arg("deterministic") = false,
        py::arg("stream") = 0,
        "Queue the backward on `stream` for device pointers. dq, dk, dv C-contiguous; lse "
        "C-contiguous; workspace holds attention_workspace_elems(B, H, N) elements.");
  m.def("attention_workspace_elems", &gpu::backward_workspace_elems, py::arg("B"), py::arg("H"),
        py::arg("N"), "Elements of q's dtype the backward's workspace needs.");
  m.def("attention_tiles", &attention_tiles, py::arg("dtype"), py::arg("head_dim"),
        "Tile shapes and shared memory of the kernels for a dtype and head dim (no GPU needed).");
  m.attr("max_head_dim") = gpu::kMaxHeadDim;
}
