"""The tutorial notebooks execute from top to bottom without error, and are committed clean.

Each notebook is a jupytext pair: ``notebooks/NN_name.py`` (percent format) is the source a
person edits, and ``NN_name.ipynb`` beside it is kept in step with
``jupytext --sync notebooks/*.py``.

Each notebook runs in a fresh ``python3`` kernel started with this interpreter
(jupyter_client replaces the kernelspec's ``python`` with ``sys.executable``), in a
temporary working directory, so it sees the installed ``bayes_gmm`` and writes nothing into
the repository.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["01_quickstart.ipynb", "02_uncertainty_aware_clustering.ipynb",
             "03_choosing_k.ipynb", "04_accelerators_and_scale.ipynb",
             "05_prior_programs.ipynb"]
CELL_TIMEOUT_S = 300


def _read(name):
    with open(NOTEBOOK_DIR / name, encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


def _paired_source(name):
    return NOTEBOOK_DIR / (Path(name).stem + ".py")


def test_every_notebook_is_listed():
    """Every notebook is listed, and the only .py files are their paired sources."""
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.py")) == \
        sorted(_paired_source(n).name for n in NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean_and_in_sync_with_its_source(name):
    """No outputs in the repository, and the cells are those of the paired percent source."""
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(code) // 2  # narrated

    py = _paired_source(name)
    assert py.is_file(), f"{name} has no paired source {py.name}"
    source = jupytext.read(py)
    assert source.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert [(c.cell_type, c.source) for c in nb.cells] == \
        [(c.cell_type, c.source) for c in source.cells], \
        f"{name} and {py.name} differ: run `jupytext --sync notebooks/*.py`"


def test_notebooks_use_only_public_names():
    """Tutorials teach the public API: no private modules or underscore attributes."""
    for name in NOTEBOOKS:
        for cell in _read(name).cells:
            if cell.cell_type != "code":
                continue
            src = cell.source
            assert "bg._" not in src and "bayes_gmm._" not in src, (name, src)
            for line in src.splitlines():
                if line.startswith(("import bayes_gmm", "from bayes_gmm")):
                    assert line.split()[1] in ("bayes_gmm", "bayes_gmm.datasets"), (name, line)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path):
    nb = _read(name)
    # A last cell reports the kernel's interpreter: it must be this one (so this bayes_gmm).
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.executable)"))
    # The kernel runs as a reader's would: no MPLBACKEND (conftest sets Agg for this
    # process); the notebooks' `%matplotlib inline` renders each returned Figure as a PNG.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute(env=env)
    elapsed = time.perf_counter() - start

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    # Every figure a cell returns is displayed as an image.
    figures = [o for o in outputs if o.output_type in ("execute_result", "display_data")
               and "<Figure" in o.data.get("text/plain", "")]
    assert all("image/png" in o.data for o in figures)
    assert figures or name.startswith("04_")  # 04 has no figures
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert last.startswith("KERNEL ")
    assert os.path.realpath(last.split(" ", 1)[1].strip()) == os.path.realpath(sys.executable)
    # Nothing was written next to the notebooks.
    assert not list(NOTEBOOK_DIR.glob("*.npy"))
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"{name}: executed in {elapsed:.1f} s wall, {cpu:.1f} s CPU (kernel)")
