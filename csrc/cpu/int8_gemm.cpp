// Bindings of the exact int8 GEMM (numtrans/compress/int8.py calls these):
//   int8_pack_b(b)                          B (K, N) int8 -> (packed panels, column offsets)
//   int8_matmul_packed(a, packed, offset, N, isa)   A int8 (M, K) @ packed B -> int32 (M, N)
//   int8_linear(x, packed, offset, N, w_scale, bias, isa)
//       float32 x (M, K) -> float32 (M, N): quantize each row of x, exact int32 GEMM, rescale:
//       y[i, n] = float(C[i, n]) * s_x[i] * s_w[n] + bias[n]   (the QuantizedLinear forward)
//   int8_matmul(a, b, isa)                  the one-shot form: packs B, or (isa "scalar") the
//                                           three plain loops below, the reference of them all
// The layouts and the kernels are in int8_gemm.hpp and int8_kernels.cpp. Every call releases
// the GIL while it computes. Shapes are validated in Python first; the checks here are a net.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <stdexcept>

#include "cpu/int8_gemm.hpp"

namespace py = pybind11;
using namespace numtrans::int8;

namespace {

using CInt8 = py::array_t<std::int8_t, py::array::c_style>;
using CInt32 = py::array_t<std::int32_t, py::array::c_style>;
using CFloat = py::array_t<float, py::array::c_style>;

// The reference: C = A @ B by definition, on the unpacked inputs.
void gemm_plain(const std::int8_t* a, const std::int8_t* b, std::int32_t* c, i64 M, i64 K,
                i64 N) {
  for (i64 i = 0; i < M; ++i) {
    std::uint32_t* row = reinterpret_cast<std::uint32_t*>(c + i * N);  // unsigned: wraps, no UB
    for (i64 j = 0; j < N; ++j) row[j] = 0;
    for (i64 k = 0; k < K; ++k) {
      const std::int32_t av = a[i * K + k];
      for (i64 j = 0; j < N; ++j) row[j] += static_cast<std::uint32_t>(av * b[k * N + j]);
    }
  }
}

std::string pick(const std::string& isa) {
  const auto ok = usable_isas();
  if (isa.empty()) return ok.front();
  for (const auto& name : ok)
    if (name == isa) return isa;
  throw std::invalid_argument("int8 GEMM: instruction set '" + isa + "' is not usable here");
}

// B (K, N) -> packed (P, G, kNR * 4) int8 and offset (P * kNR,) int32 (int8_gemm.hpp).
py::tuple pack_b(CInt8 b) {
  if (b.ndim() != 2) throw std::invalid_argument("int8_pack_b: expected a 2-D B");
  const i64 K = b.shape(0), N = b.shape(1), G = groups(K), P = panels(N);
  py::array_t<std::int8_t> packed({P, G, kNR * 4});
  py::array_t<std::int32_t> offset({P * kNR});
  const std::int8_t* src = b.data();
  std::int8_t* dst = packed.mutable_data();
  std::int32_t* off = offset.mutable_data();
  {
    py::gil_scoped_release release;
    std::memset(dst, 0, static_cast<size_t>(P * G * kNR * 4));
    std::vector<std::uint32_t> sum(static_cast<size_t>(P * kNR), 0);  // wraps, like C itself
    for (i64 k = 0; k < K; ++k)
      for (i64 n = 0; n < N; ++n) {
        const std::int8_t v = src[k * N + n];
        dst[(((n / kNR) * G + k / 4) * kNR + n % kNR) * 4 + k % 4] = v;
        sum[n] += static_cast<std::uint32_t>(static_cast<std::int32_t>(v));
      }
    for (i64 n = 0; n < P * kNR; ++n) off[n] = static_cast<std::int32_t>(0u - 128u * sum[n]);
  }
  return py::make_tuple(packed, offset);
}

PackedB view_b(const CInt8& packed, const CInt32& offset, i64 K, i64 N) {
  if (packed.ndim() != 3 || packed.shape(0) != panels(N) || packed.shape(1) != groups(K) ||
      packed.shape(2) != kNR * 4 || offset.ndim() != 1 || offset.shape(0) != panels(N) * kNR)
    throw std::invalid_argument("int8 GEMM: the packed B does not match K and N");
  return PackedB{packed.data(), offset.data(), K, N};
}

// A (M, K) int8 -> packed row tiles, shifted to unsigned.
std::vector<std::uint8_t> pack_a(const std::int8_t* a, i64 M, i64 K) {
  const i64 G = groups(K);
  std::vector<std::uint8_t> out(static_cast<size_t>(tiles(M) * G * kMR * 4), 0);
  for (i64 i = 0; i < M; ++i)
    for (i64 k = 0; k < K; ++k)
      out[(((i / kMR) * G + k / 4) * kMR + i % kMR) * 4 + k % 4] =
          static_cast<std::uint8_t>(a[i * K + k] + 128);
  return out;
}

py::tuple matmul_packed(CInt8 a, CInt8 packed, CInt32 offset, i64 N, const std::string& isa) {
  if (a.ndim() != 2) throw std::invalid_argument("int8_matmul_packed: expected a 2-D A");
  const i64 M = a.shape(0), K = a.shape(1);
  const PackedB b = view_b(packed, offset, K, N);
  const std::string use = pick(isa);
  py::array_t<std::int32_t> c({M, N});
  const std::int8_t* pa = a.data();
  std::int32_t* pc = c.mutable_data();
  {
    py::gil_scoped_release release;
    const std::vector<std::uint8_t> au = pack_a(pa, M, K);
    if (M > 0 && N > 0) gemm_packed(use, PackedA{au.data(), M, K}, b, pc);
  }
  return py::make_tuple(c, use);
}

py::array_t<float> linear(CFloat x, CInt8 packed, CInt32 offset, i64 N, CFloat w_scale,
                          std::optional<CFloat> bias, const std::string& isa) {
  if (x.ndim() != 2) throw std::invalid_argument("int8_linear: expected a 2-D x");
  const i64 M = x.shape(0), K = x.shape(1);
  const PackedB b = view_b(packed, offset, K, N);
  if (w_scale.ndim() != 1 || w_scale.shape(0) != N || (bias && bias->size() != N))
    throw std::invalid_argument("int8_linear: w_scale and bias must have N entries");
  const std::string use = pick(isa);
  py::array_t<float> y({M, N});
  const float* px = x.data();
  const float* sw = w_scale.data();
  const float* pb = bias ? bias->data() : nullptr;
  float* py_ = y.mutable_data();
  {
    py::gil_scoped_release release;
    std::vector<std::uint8_t> au(static_cast<size_t>(tiles(M) * groups(K) * kMR * 4));
    std::vector<float> sx(static_cast<size_t>(M));
    quantize_pack_a(use, px, M, K, au.data(), sx.data());
    // The int32 C is written into y's own memory (same size), then rescaled in place.
    std::int32_t* acc = reinterpret_cast<std::int32_t*>(py_);
    if (M > 0 && N > 0) gemm_packed(use, PackedA{au.data(), M, K}, b, acc);
    for (i64 i = 0; i < M; ++i)
      for (i64 n = 0; n < N; ++n) {
        std::int32_t v;
        std::memcpy(&v, acc + i * N + n, 4);
        // the same operations in the same order as the NumPy path, so the results are equal
        const float out = static_cast<float>(v) * sx[i] * sw[n];
        py_[i * N + n] = pb ? out + pb[n] : out;
      }
  }
  return y;
}

py::tuple matmul(CInt8 a, CInt8 b, const std::string& isa) {
  if (a.ndim() != 2 || b.ndim() != 2) throw std::invalid_argument("int8_matmul: expected 2-D");
  const i64 M = a.shape(0), K = a.shape(1), N = b.shape(1);
  if (b.shape(0) != K) throw std::invalid_argument("int8_matmul: inner dimensions differ");
  const std::string use = pick(isa);
  if (use != "scalar") {
    py::tuple p = pack_b(b);
    return matmul_packed(a, p[0].cast<CInt8>(), p[1].cast<CInt32>(), N, use);
  }
  py::array_t<std::int32_t> c({M, N});
  const std::int8_t* pa = a.data();
  const std::int8_t* pb = b.data();
  std::int32_t* pc = c.mutable_data();
  {
    py::gil_scoped_release release;
    gemm_plain(pa, pb, pc, M, K, N);
  }
  return py::make_tuple(c, use);
}

}  // namespace

void register_int8(py::module_& m) {
  m.def("int8_matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("isa") = "",
        "Exact int8 (M,K) @ int8 (K,N) -> (int32 (M,N), isa used).");
  m.def("int8_pack_b", &pack_b, py::arg("b"),
        "int8 B (K,N) -> (packed (P,G,256) int8, offset (P*64,) int32): the kernels' layout.");
  m.def("int8_matmul_packed", &matmul_packed, py::arg("a"), py::arg("packed"), py::arg("offset"),
        py::arg("n"), py::arg("isa") = "",
        "Exact int8 (M,K) @ packed B -> (int32 (M,N), isa used).");
  m.def("int8_linear", &linear, py::arg("x"), py::arg("packed"), py::arg("offset"), py::arg("n"),
        py::arg("w_scale"), py::arg("bias") = py::none(), py::arg("isa") = "",
        "float32 x (M,K) -> float32 (M,N): dynamic row quantization, int8 GEMM, rescale.");
  m.def("int8_isas", &usable_isas, "int8 GEMM kernels usable on this CPU, best first.");
}
