#!/usr/bin/env bash
# The prepared GPU check of numtrans' CUDA fused attention, in one command (for a machine with
# one NVIDIA H200 and no network; written to finish within 8 minutes):
#
#   bash benchmarks/gpu_check.sh          # from anywhere; it works in the repository root
#
#   1. environment: GPU, nvcc, Python and the packages needed (prints what is missing)
#   2. build numtrans with NUMTRANS_CUDA=ON into build/gpu/site (pip --target: nothing is
#      installed into the Python environment, nothing is downloaded: --no-index,
#      --no-build-isolation; the CMake build dir build/gpu/cmake makes a re-run incremental)
#   3. stop with "no GPU visible" (exit 5) if the freshly built module sees no GPU
#   4. tests: tests/test_cuda_attention.py and the native attention tests (CPU kernels too)
#   5. benchmarks/attention_cuda.py: numtrans vs torch's scaled_dot_product_attention
#
# The full log is written to $OUT/gpu_check.log when OUT is set, else ./gpu_check.log, and the
# benchmark's table to $OUT/attention_cuda.json (else build/gpu/attention_cuda.json).
# Settings: CUDA_ARCH (default 90, the H100/H200's), PYTHON (default python3, 3.11 or later),
# GPU_CHECK_JOBS (parallel compile jobs, default: all cores), GPU_CHECK_SECONDS (default 470:
# the benchmark gets what the build and the tests leave of it).
# Exit status: 0 all passed, 3 a build requirement is missing, 4 the build failed, 5 no GPU
# visible, 6 tests failed, 7 the benchmark failed.
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 3

PY=${PYTHON:-python3}
ARCH=${CUDA_ARCH:-90}
TOTAL=${GPU_CHECK_SECONDS:-470}
JOBS=${GPU_CHECK_JOBS:-$(nproc)}
SITE=build/gpu/site
LOG="${OUT:+$OUT/}gpu_check.log"
JSON="${OUT:-build/gpu}/attention_cuda.json"
START=$(date +%s)

elapsed() { echo $(($(date +%s) - START)); }
stage() { printf '\n=== [%ss] %s\n' "$(elapsed)" "$*"; }

environment() {
  stage "1. environment"
  date -u
  uname -srm
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "nvidia-smi: not found"; fi
  if command -v nvcc >/dev/null; then nvcc --version | tail -n 2; else echo "MISSING nvcc"; fi
  if command -v cmake >/dev/null; then cmake --version | head -n 1; fi
  "$PY" - <<'EOF'
import importlib.metadata as md
import importlib.util
import shutil
import sys

print("Python", sys.version.split()[0], "at", sys.executable)
need = {  # distribution: (module, what needs it, required to build)
    "numpy": ("numpy", "everything", True),
    "scikit-build-core": ("scikit_build_core", "the build", True),
    "pybind11": ("pybind11", "the build", True),
    "safetensors": ("safetensors", "import numtrans", True),
    "tqdm": ("tqdm", "import numtrans", True),
    "pytest": ("pytest", "the tests", False),
    "hypothesis": ("hypothesis", "the tests", False),
    "torch": ("torch", "the device-array tests and the benchmark", False),
    "cupy-cuda13x": ("cupy", "one optional test", False),
}
fatal = []
for dist, (module, why, required) in need.items():
    if importlib.util.find_spec(module) is None:
        print(f"MISSING {dist} (needed for {why})")
        if required:
            fatal.append(dist)
        continue
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        version = "?"
    print(f"ok      {dist} {version}")
if shutil.which("cmake") is None and importlib.util.find_spec("cmake") is None:
    print("MISSING cmake (needed for the build)")
    fatal.append("cmake")
if shutil.which("nvcc") is None:
    fatal.append("nvcc")
if fatal:
    print("cannot build without:", ", ".join(fatal))
    sys.exit(1)
EOF
}

build() {
  stage "2. build: NUMTRANS_CUDA=ON, CUDA architectures $ARCH, into $SITE"
  rm -rf "$SITE"
  if ! PIP_NO_INDEX=1 NUMTRANS_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" timeout 360 \
    "$PY" -m pip install -v --no-index --no-deps --no-build-isolation --target "$SITE" \
    -Cbuild-dir=build/gpu/cmake -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCH" .; then
    echo "BUILD FAILED"
    return 1
  fi
  echo "--- $SITE/numtrans/_build_info.txt"
  cat "$SITE/numtrans/_build_info.txt"
  ls "$SITE"/numtrans/_c*.so
}

gpu_visible() {
  stage "3. GPU"
  # Load the freshly built module by its path: this works even where another numtrans
  # installation would shadow build/gpu/site.
  "$PY" - "$SITE" <<'EOF'
import glob
import importlib.util
import sys

paths = glob.glob(f"{sys.argv[1]}/numtrans/_cuda*.so")
if not paths:
    print("the CUDA module was not built")
    sys.exit(1)
spec = importlib.util.spec_from_file_location("_cuda", paths[0])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
count = module.device_count()
if count == 0:
    print("no GPU visible (the freshly built numtrans._cuda reports device_count() == 0)")
    sys.exit(1)
print(f"{count} GPU(s) visible; GPU 0: {module.device_name(0)}")
EOF
}

tests() {
  stage "4. tests"
  "$PY" -P - <<'EOF' || return 1
import sys

import numtrans

print("numtrans imported from", numtrans.__file__)
if "build/gpu/site" not in numtrans.__file__:
    print("another numtrans installation shadows build/gpu/site: the tests would not test the build")
    sys.exit(1)
numtrans.show_config()
EOF
  timeout 240 "$PY" -P -m pytest -q -p no:cacheprovider tests/test_cuda_attention.py \
    tests/test_native_attention.py tests/test_native_attention_api.py tests/test_backends.py
}

benchmark() {
  local left=$((TOTAL - $(elapsed)))
  ((left < 60)) && left=60
  stage "5. benchmark (time limit ${left}s)"
  mkdir -p "$(dirname "$JSON")"
  timeout $((left + 30)) "$PY" -P benchmarks/attention_cuda.py --time-limit "$left" --json "$JSON"
}

main() {
  echo "numtrans GPU check, $(git rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
  environment || return 3
  build || return 4
  gpu_visible || { echo "stopping: no GPU visible, so no GPU tests and no benchmark"; return 5; }
  export PYTHONPATH="$PWD/$SITE${PYTHONPATH:+:$PYTHONPATH}"
  local status=0
  tests || { echo "TESTS FAILED"; status=6; }
  benchmark || { echo "BENCHMARK FAILED"; [ "$status" = 0 ] && status=7; }
  stage "done: exit status $status"
  return "$status"
}

mkdir -p "$(dirname "$LOG")"
main 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
echo "log: $LOG"
exit "$status"
