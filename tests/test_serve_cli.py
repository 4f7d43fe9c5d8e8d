"""``numtrans serve`` end to end: the command in a subprocess, on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import free_port, save_tiny_gpt, save_tiny_translator  # noqa: E402


def serve(args, cwd):
    # the installed numtrans, run outside the repository (as tests/test_cli_kb.py does)
    return subprocess.Popen(
        [sys.executable, "-m", "numtrans.cli", "serve", *args],
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_names_the_models_and_answers(tmp_path):
    gpt, tr = save_tiny_gpt(tmp_path / "gpt"), save_tiny_translator(tmp_path / "tr")
    port = free_port()
    proc = serve(["--model", gpt, "--name", "shakespeare", "--model", tr, "--name", "en-zh",
                  "--port", str(port)], tmp_path)  # fmt: skip
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.time() + 60
        while True:
            try:
                models = httpx.get(url + "/api/models", timeout=5).json()["models"]
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"serve did not start: {proc.communicate()[1]}") from None
                time.sleep(0.2)
        assert [m["name"] for m in models] == ["shakespeare", "en-zh"]
        r = httpx.post(url + "/api/translate", json={"model": "en-zh", "text": "i love you."})
        assert r.status_code == 200 and r.json()["hypotheses"]
        r = httpx.post(url + "/api/next", json={"model": "gpt", "text": "to be"})
        assert r.status_code == 404 and "loaded: ['en-zh', 'shakespeare']" in r.json()["error"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"numtrans explorer on http://127.0.0.1:{port}/" in out
    assert "Traceback" not in err


def test_a_non_loopback_host_is_warned_about(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning is printed, then the
    # bind fails, so nothing is ever exposed
    proc = serve(["--model", save_tiny_gpt(tmp_path / "gpt"), "--host", "192.0.2.1",
                  "--port", str(free_port())], tmp_path)  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert "warning: binding 192.0.2.1, not loopback" in err
    assert proc.returncode != 0
