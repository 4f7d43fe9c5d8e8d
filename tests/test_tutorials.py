"""Every numbered tutorial runs top to bottom as a notebook (jupytext -> nbclient, fast mode).

A notebook run covers what a script run does (the same cells, top to bottom) and more: no
``__file__``, the kernelspec in the jupytext header, and the figures displayed inline. So the
tutorials are executed once, as notebooks, not twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 120
# tutorials that must save a figure (10 plots only with the C++ kernel)
PLOTTING = {"00", "01", "02", "03", "04", "06", "07", "08", "09", "11", "14", "15"}


def test_there_are_tutorials():
    assert TUTORIALS, "no tutorials/[0-9][0-9]_*.py found"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_header_names_a_kernel_and_no_file_global(path):
    text = path.read_text(encoding="utf-8")
    header = text.split("# ---", 2)[1]
    assert "kernelspec:" in header and "name: python3" in header, f"{path.name}: no kernelspec"
    assert "__file__" not in text.replace('globals().get("__file__"', ""), (
        f"{path.name} uses __file__, which a notebook does not define"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs_as_notebook(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    # The kernel is a child process: it inherits these.
    monkeypatch.setenv("NUMTRANS_TUTORIAL_FAST", "1")
    monkeypatch.setenv("NUMTRANS_TUTORIAL_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    nb = jupytext.read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name} failed as a notebook:\n{str(err)[-3000:]}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    if path.name[:2] in PLOTTING and "Skipping the rest" not in text:
        images = sum("image/png" in o.get("data", {}) for o in outputs)
        assert images >= 1, f"{path.name}: no figure was shown inline"
        assert list((tmp_path / "out").glob("*.png")), f"{path.name}: no PNG written"
