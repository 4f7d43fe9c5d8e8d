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


# ------------------------------------------------ one backend decision (numtrans.backends.resolve)
def test_use_switches_auto_for_a_block_and_restores_it(monkeypatch):
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    before = backends.resolve()
    with backends.use("numpy") as name:
        assert name == "numpy"
        assert backends.resolve() == "numpy"
        assert backends.resolve("auto") == "numpy"
        assert "NumPy reference" in backends.describe()
    assert backends.resolve() == before


def test_use_overrides_the_environment_and_refuses_unknown_names(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "cpu" if backends.is_available("cpu") else "numpy")
    with backends.use("numpy"):
        assert backends.resolve() == "numpy"
    with pytest.raises(ValueError, match="unknown backend"):
        with backends.use("tpu"):
            pass


def test_resolve_keeps_dropout_and_other_dtypes_in_numpy(monkeypatch):
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    assert backends.resolve(dropout_p=0.1) == "numpy"
    assert backends.resolve(dtype=np.float16) == "numpy"
    if backends.is_available("cpu"):
        assert backends.resolve() == "cpu"
        assert backends.resolve(dtype=np.float32) == "cpu"
        with pytest.raises(TypeError, match="float16"):
            backends.resolve("cpu", dtype=np.float16)


def test_float16_model_runs_on_the_default_backend(monkeypatch):
    """Issue 14, item 3: a float16 model under backend="auto" falls back to the NumPy reference."""
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    from numtrans.functional import scaled_dot_product_attention

    rng = np.random.default_rng(0)
    q32 = rng.standard_normal((1, 2, 5, 8)).astype(np.float32)
    q16 = numtrans.tensor(q32.astype(np.float16))
    out = scaled_dot_product_attention(q16, q16, q16, is_causal=True)
    assert out.dtype == np.float16
    ref = scaled_dot_product_attention(
        numtrans.tensor(q32),
        numtrans.tensor(q32),
        numtrans.tensor(q32),
        is_causal=True,
        backend="numpy",
    )
    np.testing.assert_allclose(out.data.astype(np.float32), ref.data, atol=3e-3)


def test_describe_names_what_runs(monkeypatch):
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    line = backends.describe()
    assert line.startswith("attention: ")
    if backends.is_available("cpu"):
        assert "native cpu kernel" in line and "NUMTRANS_BACKEND=numpy" in line
    report = numtrans.show_config()
    assert f"resolves to: {backends.resolve()}" in report


def test_shadowed_source_tree_is_reported(tmp_path, monkeypatch):
    """A source tree without _cpu.so that shadows an install with one is named, not silent."""
    import importlib.metadata as md

    installed = tmp_path / "site" / "numtrans"
    installed.mkdir(parents=True)
    (installed / "_cpu.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")

    class FakeFile(str):
        name = "_cpu.cpython-311-x86_64-linux-gnu.so"
        suffix = ".so"

    class FakeDist:
        files = [FakeFile("numtrans/_cpu.cpython-311-x86_64-linux-gnu.so")]

        def locate_file(self, f):
            return tmp_path / "site" / str(f)

    source = tmp_path / "src" / "numtrans"
    source.mkdir(parents=True)
    monkeypatch.setattr(md, "distribution", lambda name: FakeDist())
    monkeypatch.setattr(backends, "__file__", str(source / "backends.py"))
    backends.shadowed_install.cache_clear()
    try:
        message = backends.shadowed_install()
        assert str(source) in message and str(installed) in message
        (source / "_cpu.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
        backends.shadowed_install.cache_clear()
        assert backends.shadowed_install() == ""
    finally:
        backends.shadowed_install.cache_clear()
