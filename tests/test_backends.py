"""The optional native build: what is available, why, and that the C++ module agrees with NumPy."""

import os

import numpy as np
import pytest

import numtrans
from numtrans import backends
from numtrans.functional.activations import softmax_array


def test_numpy_backend_always_available():
    assert "numpy" in backends.available()
    assert backends.is_available("numpy")


def test_cpu_module_was_built_in_ci():
    """In CI a silent fallback to NumPy must not pass unnoticed."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip("only asserted in CI (CI=true)")
    assert backends.is_available("cpu"), backends.reason("cpu")


def test_show_config_names_every_backend(capsys):
    report = numtrans.show_config()
    assert capsys.readouterr().out.strip() == report
    for name in ("numpy", "cpu", "cuda"):
        assert f"  {name} " in report
        assert backends.reason(name)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        backends.is_available("tpu")


def test_forced_backend_from_environment(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")
    assert backends.default() == "numpy"
    monkeypatch.setenv("NUMTRANS_BACKEND", "fpga")
    with pytest.raises(ValueError, match="NUMTRANS_BACKEND"):
        backends.default()


def test_missing_backend_error_says_why():
    if backends.is_available("cuda"):
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda"):
        backends.get("cuda")


needs_cpu = pytest.mark.skipif(not backends.is_available("cpu"), reason=backends.reason("cpu"))


@needs_cpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 5, 130), (4, 1000)])
def test_native_softmax_matches_numpy(dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    x[..., 0, :] = -np.inf if len(shape) > 1 else x[..., 0, :]  # a fully masked row
    out = backends.get("cpu").softmax(x)
    assert out.dtype == dtype
    ref = softmax_array(x.astype(np.float64))
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[..., 0, :], 0)


@needs_cpu
def test_native_softmax_large_logits_do_not_overflow():
    x = np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32)
    np.testing.assert_allclose(backends.get("cpu").softmax(x), [[0.5, 0.5, 0.0]])


@needs_cpu
def test_thread_count_round_trip():
    before = backends.get_num_threads()
    numtrans.set_num_threads(1)
    assert backends.get_num_threads() == 1
    numtrans.set_num_threads(before)
    assert backends.get_num_threads() == before
