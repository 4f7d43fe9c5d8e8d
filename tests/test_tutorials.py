"""Every numbered tutorial runs top to bottom as a notebook (jupytext -> nbclient, fast mode),
and prints the numbers its text says it prints.

A notebook run covers what a script run does (the same cells, top to bottom) and more: no
``__file__``, the kernelspec in the jupytext header, and the figures displayed inline. So the
tutorials are executed once, as notebooks, not twice.

Stated numbers: a tutorial's Markdown names its key fast-mode results as
```RESULT name = value``` or ```RESULT name = value ± tolerance``` (inside backticks), and its
code prints each one as a line ``RESULT name = value``. Without a ``±`` the printed value must
round to the stated one (a tolerance of half a unit in the stated last digit); the runs are
seeded, so the tolerances are tight. The test checks both ways: every stated number is printed
and within its tolerance, and every printed one is stated, so text and output cannot drift.

Interactive views: the tutorials in ``INTERACTIVE`` must show a ``numtrans.viz`` view inline (a
``text/html`` output that calls the explorer's drawing function), so it cannot silently vanish.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 300  # per cell; 11's distillation cell takes ~50 s on a loaded 2-core machine
# tutorials that must save a figure (10 plots only with the C++ kernel)
PLOTTING = {"00", "01", "02", "03", "04", "06", "07", "08", "09", "11", "12", "13", "14", "15"}
# tutorials that must state (and print) at least one checked number
STATES_RESULTS = {p.name[:2] for p in TUTORIALS}  # every tutorial, new ones too
# tutorials that show a trained model's attention as an interactive view (numtrans.viz) inline,
# and the explorer function its HTML calls (02-04 draw random weights: static figures only)
INTERACTIVE = {"06": "attentionPanel", "08": "attentionPanel", "09": "translationPanel"}

NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?"  # "0.0e+00": an exact zero in :.1e
STATED = re.compile(rf"`RESULT (\w+) = ({NUMBER})(?: ± ({NUMBER}))?`")
PRINTED = re.compile(rf"^RESULT (\w+) = ({NUMBER})\s*$", re.MULTILINE)
PRINTED_IN_CODE = re.compile(r"RESULT (\w+) =")


def half_unit(number: str) -> float:
    """Half a unit in the last digit written: '2.484' -> 0.0005, '18' -> 0.5, '1e-12' -> 5e-13."""
    mantissa, _, exponent = number.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def stated_results(path: Path) -> dict[str, tuple[float, float]]:
    """name -> (value, tolerance) from the Markdown cells of a tutorial."""
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    out = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for name, value, tol in STATED.findall(cell.source):
            assert name not in out, f"{path.name}: RESULT {name} is stated twice"
            out[name] = (float(value), float(tol) if tol else half_unit(value))
    return out


def printed_in_code(path: Path) -> set[str]:
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return set(PRINTED_IN_CODE.findall(code))


def test_there_are_tutorials():
    assert TUTORIALS, "no tutorials/[0-9][0-9]_*.py found"


def test_half_unit():
    assert half_unit("2.484") == pytest.approx(0.0005)
    assert half_unit("18") == 0.5
    assert half_unit("1e-12") == pytest.approx(5e-13)
    assert half_unit("0.5e-3") == pytest.approx(5e-5)
    assert half_unit("0.0e+00") == pytest.approx(0.05)


def test_printed_lines_parse():
    """What `:.1e` prints for an exact zero, and a negative number, are read as printed."""
    text = "RESULT a = 0.0e+00\nRESULT b = -3.5e-07\nRESULT c = 12\n"
    assert PRINTED.findall(text) == [("a", "0.0e+00"), ("b", "-3.5e-07"), ("c", "12")]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_header_names_a_kernel_and_no_file_global(path):
    text = path.read_text(encoding="utf-8")
    header = text.split("# ---", 2)[1]
    assert "kernelspec:" in header and "name: python3" in header, f"{path.name}: no kernelspec"
    assert "__file__" not in text.replace('globals().get("__file__"', ""), (
        f"{path.name} uses __file__, which a notebook does not define"
    )


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_stated_results_are_the_printed_ones(path):
    """Without running: the names the text states are the names the code prints."""
    stated, printed = set(stated_results(path)), printed_in_code(path)
    if path.name[:2] in STATES_RESULTS:
        assert stated, f"{path.name} states no `RESULT name = value` for fast mode"
    assert stated == printed, (
        f"{path.name}: stated but never printed {sorted(stated - printed)}; "
        f"printed but not stated {sorted(printed - stated)}"
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
    assert "attention: " in text, f"{path.name} does not say which code runs attention"
    skipped = "Skipping the rest" in text  # 08 without the MiniLM weights
    if path.name[:2] in PLOTTING and not skipped:
        images = sum("image/png" in o.get("data", {}) for o in outputs)
        assert images >= 1, f"{path.name}: no figure was shown inline"
        assert list((tmp_path / "out").glob("*.png")), f"{path.name}: no PNG written"
    if path.name[:2] in INTERACTIVE and not skipped:
        html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
        html = ["".join(h) if isinstance(h, list) else h for h in html]
        call = f"window.numtransExplorer.{INTERACTIVE[path.name[:2]]}(root, data)"
        views = [h for h in html if "class='nt-explorer'" in h and call in h and "nt-data" in h]
        assert views, f"{path.name}: no interactive view ({call}) among its text/html outputs"
    if skipped:
        return
    printed = {}
    for name, value in PRINTED.findall(text):
        assert name not in printed, f"{path.name} printed RESULT {name} twice"
        printed[name] = float(value)
    stated = stated_results(path)
    assert set(printed) == set(stated), (
        f"{path.name}: stated {sorted(stated)}, printed {sorted(printed)}"
    )
    wrong = [
        f"{name} = {printed[name]:g} (the text says {value:g} ± {tol:g})"
        for name, (value, tol) in stated.items()
        if not abs(printed[name] - value) <= tol * (1 + 1e-9)
    ]
    assert not wrong, f"{path.name} printed numbers its text does not state: " + "; ".join(wrong)
