// pybind11 bindings of numtrans._cpu. Inputs are validated in Python first; here we only
// take C-contiguous arrays of the right dtype (pybind11 copies other layouts) and release
// the GIL while the kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "cpu/attention.hpp"
#include "cpu/softmax.hpp"

#ifdef NUMTRANS_HAVE_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

void register_elementwise(py::module_& m);  // elementwise.cpp
void register_int8(py::module_& m);         // int8_gemm.cpp
void register_layers(py::module_& m);       // layers_module.cpp

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

// ------------------------------------------------------------------------ fused attention --
// numtrans/native/attention.py validates shapes and dtypes and broadcasts the mask to
// (B, H, N, M) (a view with zero strides, no copy) before calling these; the checks here are a
// safety net. Inputs are read in place through their strides, whatever their layout.

template <typename T, typename E = T>
static numtrans::View4<E> view4(const py::array& a, const char* name) {
  if (a.ndim() != 4) throw std::invalid_argument(std::string(name) + ": expected 4 dimensions");
  if (!a.dtype().is(py::dtype::of<E>()))
    throw std::invalid_argument(std::string(name) + ": unexpected dtype");
  numtrans::View4<E> v;
  v.data = static_cast<const E*>(a.data());
  std::int64_t* s[4] = {&v.s0, &v.s1, &v.s2, &v.s3};
  for (int d = 0; d < 4; ++d) {
    if (a.strides(d) % static_cast<py::ssize_t>(sizeof(E)) != 0)
      throw std::invalid_argument(std::string(name) + ": strides must be whole elements");
    *s[d] = a.shape(d) == 1 ? 0 : a.strides(d) / static_cast<py::ssize_t>(sizeof(E));
  }
  return v;
}

static void expect_shape(const py::array& a, const char* name, std::int64_t d0, std::int64_t d1,
                         std::int64_t d2, std::int64_t d3) {
  if (a.shape(0) != d0 || a.shape(1) != d1 || a.shape(2) != d2 || a.shape(3) != d3)
    throw std::invalid_argument(std::string(name) + ": shape does not match the other inputs");
}

template <typename T>
static numtrans::AttentionProblem<T> make_problem(const py::array& q, const py::array& k,
                                                  const py::array& v, const py::object& mask,
                                                  bool causal, double scale) {
  numtrans::AttentionProblem<T> p;
  p.q = view4<T>(q, "q");
  p.k = view4<T>(k, "k");
  p.v = view4<T>(v, "v");
  p.B = q.shape(0), p.H = q.shape(1), p.N = q.shape(2), p.D = q.shape(3);
  p.M = k.shape(2), p.Dv = v.shape(3);
  expect_shape(k, "k", p.B, p.H, p.M, p.D);
  expect_shape(v, "v", p.B, p.H, p.M, p.Dv);
  if (!mask.is_none()) {
    py::array m = mask.cast<py::array>();
    if (m.ndim() != 4) throw std::invalid_argument("attn_mask: expected 4 dimensions");
    expect_shape(m, "attn_mask", p.B, p.H, p.N, p.M);
    if (m.dtype().is(py::dtype::of<bool>())) {
      p.mask_kind = numtrans::MaskKind::boolean;
      py::array m8 = py::array(py::dtype::of<std::uint8_t>(), {p.B, p.H, p.N, p.M},
                               {m.strides(0), m.strides(1), m.strides(2), m.strides(3)},
                               m.data(), m);  // a uint8 view of the same bytes
      p.mask_bool = view4<std::uint8_t, std::uint8_t>(m8, "attn_mask");
    } else {
      p.mask_kind = numtrans::MaskKind::additive;
      p.mask_add = view4<T>(m, "attn_mask");
    }
  }
  p.causal = causal;
  p.scale = static_cast<T>(scale);
  return p;
}

// An output: the caller's array `given` (any layout whose rows are contiguous, e.g. the
// transposed view of a (B, rows, H, cols) buffer), or a new C-contiguous one when it is None.
template <typename T>
static numtrans::OutView4<T> out_view(const py::object& given, py::array& holder,
                                      const char* name, std::int64_t B, std::int64_t H,
                                      std::int64_t rows, std::int64_t cols) {
  if (given.is_none()) {
    py::array_t<T> a({B, H, rows, cols});
    holder = a;
    return numtrans::contiguous4<T>(a.mutable_data(), H, rows, cols);
  }
  holder = given.cast<py::array>();
  if (holder.ndim() != 4 || !holder.dtype().is(py::dtype::of<T>()))
    throw std::invalid_argument(std::string(name) + ": expected a 4-D array of q's dtype");
  expect_shape(holder, name, B, H, rows, cols);
  if (!holder.writeable()) throw std::invalid_argument(std::string(name) + ": not writeable");
  numtrans::OutView4<T> o;
  o.data = static_cast<T*>(holder.mutable_data());
  std::int64_t* s[3] = {&o.s0, &o.s1, &o.s2};
  const auto size = static_cast<py::ssize_t>(sizeof(T));
  for (int d = 0; d < 4; ++d) {
    const py::ssize_t stride = holder.strides(d);
    if (stride % size != 0 || stride < 0)
      throw std::invalid_argument(std::string(name) + ": strides must be whole, >= 0 elements");
    if (d < 3) *s[d] = holder.shape(d) == 1 ? 0 : stride / size;
    else if (cols > 1 && stride != size)
      throw std::invalid_argument(std::string(name) + ": rows must be contiguous");
  }
  return o;
}

template <typename T>
static py::tuple forward_t(const py::array& q, const py::array& k, const py::array& v,
                           const py::object& mask, bool causal, double scale,
                           const std::string& isa, bool reference, const py::object& out_arg) {
  const auto p = make_problem<T>(q, k, v, mask, causal, scale);
  py::array out;
  py::array_t<T> lse({p.B, p.H, p.N});
  numtrans::ForwardResult<T> r{out_view<T>(out_arg, out, "out", p.B, p.H, p.N, p.Dv),
                               lse.mutable_data()};
  std::string used = "reference";
  {
    py::gil_scoped_release release;
    if (reference)
      numtrans::attention_forward_reference(p, r);
    else
      used = numtrans::attention_forward_fast(p, r, isa);
  }
  return py::make_tuple(out, lse, used);
}

template <typename T>
static py::tuple backward_t(const py::array& dout, const py::array& q, const py::array& k,
                            const py::array& v, const py::array& out, const py::array& lse,
                            const py::object& mask, bool causal, double scale,
                            const std::string& isa, bool reference, const py::object& dq_arg,
                            const py::object& dk_arg, const py::object& dv_arg) {
  const auto p = make_problem<T>(q, k, v, mask, causal, scale);
  numtrans::BackwardInput<T> g;
  g.dout = view4<T>(dout, "grad_out");
  g.out = view4<T>(out, "out");
  expect_shape(dout, "grad_out", p.B, p.H, p.N, p.Dv);
  expect_shape(out, "out", p.B, p.H, p.N, p.Dv);
  auto lse_c = py::array_t<T, py::array::c_style>::ensure(lse);
  if (!lse_c || lse_c.ndim() != 3 || lse_c.shape(0) != p.B || lse_c.shape(1) != p.H ||
      lse_c.shape(2) != p.N)
    throw std::invalid_argument("lse: expected shape (B, H, N) and the dtype of q");
  g.lse = lse_c.data();
  py::array dq, dk, dv;
  numtrans::BackwardResult<T> r{out_view<T>(dq_arg, dq, "dq", p.B, p.H, p.N, p.D),
                                out_view<T>(dk_arg, dk, "dk", p.B, p.H, p.M, p.D),
                                out_view<T>(dv_arg, dv, "dv", p.B, p.H, p.M, p.Dv)};
  std::string used = "reference";
  {
    py::gil_scoped_release release;
    if (reference)
      numtrans::attention_backward_reference(p, g, r);
    else
      used = numtrans::attention_backward_fast(p, g, r, isa);
  }
  return py::make_tuple(dq, dk, dv, used);
}

static bool is_float64(const py::array& q) {
  if (q.dtype().is(py::dtype::of<double>())) return true;
  if (q.dtype().is(py::dtype::of<float>())) return false;
  throw std::invalid_argument("attention: q must be float32 or float64");
}

static py::tuple attention_forward(const py::array& q, const py::array& k, const py::array& v,
                                   const py::object& mask, bool causal, double scale,
                                   const std::string& isa, bool reference,
                                   const py::object& out) {
  return is_float64(q) ? forward_t<double>(q, k, v, mask, causal, scale, isa, reference, out)
                       : forward_t<float>(q, k, v, mask, causal, scale, isa, reference, out);
}

static py::tuple attention_backward(const py::array& dout, const py::array& q,
                                    const py::array& k, const py::array& v, const py::array& out,
                                    const py::array& lse, const py::object& mask, bool causal,
                                    double scale, const std::string& isa, bool reference,
                                    const py::object& dq, const py::object& dk,
                                    const py::object& dv) {
  return is_float64(q) ? backward_t<double>(dout, q, k, v, out, lse, mask, causal, scale, isa,
                                            reference, dq, dk, dv)
                       : backward_t<float>(dout, q, k, v, out, lse, mask, causal, scale, isa,
                                           reference, dq, dk, dv);
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
  register_int8(m);
  register_layers(m);
  m.def("attention_forward", &attention_forward, py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("mask"), py::arg("causal"), py::arg("scale"), py::arg("isa") = "",
        py::arg("reference") = false, py::arg("out") = py::none(),
        "Fused attention forward -> (out (B,H,N,Dv), lse (B,H,N), isa used). Inputs are "
        "validated by numtrans.native.attention; the mask is pre-broadcast to (B,H,N,M). "
        "`out`: an array to write into (any layout with contiguous rows), else a new one.");
  m.def("attention_backward", &attention_backward, py::arg("grad_out"), py::arg("q"),
        py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("mask"),
        py::arg("causal"), py::arg("scale"), py::arg("isa") = "", py::arg("reference") = false,
        py::arg("dq") = py::none(), py::arg("dk") = py::none(), py::arg("dv") = py::none(),
        "Fused attention backward -> (dq, dk, dv, isa used); dq, dk, dv as `out` above.");
  m.def("attention_isas", &numtrans::attention_isas,
        "Instruction sets of the fast attention kernels usable on this CPU, best first.");
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
#ifdef NUMTRANS_HAVE_OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
