// Lesson 5: one binary, many CPUs.
//
// A wheel must run on every x86-64 machine, so the default build may not use -march=native.
// Instead CMake compiles attention_forward.cpp and attention_backward.cpp up to three times:
//   isa_avx512   -mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma   (16 floats per vector)
//   isa_avx2     -mavx2 -mfma                                       (8 floats per vector)
//   isa_baseline the compiler's defaults: SSE2 on x86-64, NEON on ARM (4 floats per vector)
// and this file, compiled for the baseline, asks the CPU at run time which ones it can execute
// (__builtin_cpu_supports also checks that the operating system saves the wide registers).
// NUMTRANS_CPU_ISA=avx2 (or baseline) caps the choice, which is how the tests cover the
// fallbacks on a machine that has them all.
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/attention.hpp"
#include "cpu/layers.hpp"

#ifdef NUMTRANS_HAVE_AVX512
NUMTRANS_DECLARE_ATTENTION_ISA(isa_avx512)
#endif
#ifdef NUMTRANS_HAVE_AVX2
NUMTRANS_DECLARE_ATTENTION_ISA(isa_avx2)
#endif
NUMTRANS_DECLARE_ATTENTION_ISA(isa_baseline)

namespace numtrans {

namespace {

bool cpu_has(const char* isa) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (std::string(isa) == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("fma");
  if (std::string(isa) == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::string(isa) == "baseline";
}

// Compiled and runnable here, best first.
std::vector<std::string> usable() {
  std::vector<std::string> names;
#ifdef NUMTRANS_HAVE_AVX512
  if (cpu_has("avx512")) names.push_back("avx512");
#endif
#ifdef NUMTRANS_HAVE_AVX2
  if (cpu_has("avx2")) names.push_back("avx2");
#endif
  names.push_back("baseline");
  return names;
}

// The best usable ISA no better than `ceiling` ("" = no ceiling).
std::string choose(const std::string& ceiling) {
  static const char* order[] = {"avx512", "avx2", "baseline"};
  bool allowed = ceiling.empty();
  if (!allowed) {
    bool known = false;
    for (const char* name : order) known = known || ceiling == name;
    if (!known)
      throw std::invalid_argument("unknown instruction set '" + ceiling +
                                  "'; expected avx512, avx2 or baseline");
  }
  const std::vector<std::string> ok = usable();
  for (const char* name : order) {
    allowed = allowed || ceiling == name;
    if (!allowed) continue;
    for (const auto& u : ok)
      if (u == name) return u;
  }
  return "baseline";
}

}  // namespace

std::string choose_isa(const std::string& ceiling) { return choose(ceiling); }

std::string attention_isas() {
  std::string joined;
  for (const auto& name : usable()) joined += (joined.empty() ? "" : ",") + name;
  return joined;
}

template <typename T>
std::string attention_forward_fast(const AttentionProblem<T>& p, ForwardResult<T> r,
                                   const std::string& ceiling) {
  const std::string isa = choose(ceiling);
#ifdef NUMTRANS_HAVE_AVX512
  if (isa == "avx512") {
    isa_avx512::attention_forward(p, r);
    return isa;
  }
#endif
#ifdef NUMTRANS_HAVE_AVX2
  if (isa == "avx2") {
    isa_avx2::attention_forward(p, r);
    return isa;
  }
#endif
  isa_baseline::attention_forward(p, r);
  return "baseline";
}

template <typename T>
std::string attention_backward_fast(const AttentionProblem<T>& p, const BackwardInput<T>& g,
                                    BackwardResult<T> r, const std::string& ceiling) {
  const std::string isa = choose(ceiling);
#ifdef NUMTRANS_HAVE_AVX512
  if (isa == "avx512") {
    isa_avx512::attention_backward(p, g, r);
    return isa;
  }
#endif
#ifdef NUMTRANS_HAVE_AVX2
  if (isa == "avx2") {
    isa_avx2::attention_backward(p, g, r);
    return isa;
  }
#endif
  isa_baseline::attention_backward(p, g, r);
  return "baseline";
}

template std::string attention_forward_fast<float>(const AttentionProblem<float>&,
                                                   ForwardResult<float>, const std::string&);
template std::string attention_forward_fast<double>(const AttentionProblem<double>&,
                                                    ForwardResult<double>, const std::string&);
template std::string attention_backward_fast<float>(const AttentionProblem<float>&,
                                                    const BackwardInput<float>&,
                                                    BackwardResult<float>, const std::string&);
template std::string attention_backward_fast<double>(const AttentionProblem<double>&,
                                                     const BackwardInput<double>&,
                                                     BackwardResult<double>, const std::string&);

}  // namespace numtrans
