"""The tutorials in docs/ run top to bottom in a fresh kernel, each within a minute.

Needs the notebook runner (``pip install nbclient nbformat ipykernel``; the
ipykernel package installs the ``python3`` kernel); skipped without it.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOTEBOOKS = ["01_backprop_by_hand", "02_circles", "03_cnn_digits"]
SECONDS = 60


def skip_without_requirements(name: str) -> None:
    """The CNN tutorial needs scikit-learn's digits and the image layers."""
    if name == "03_cnn_digits":
        pytest.importorskip("sklearn")
        for module in ("conv2d", "pooling", "flatten"):
            if importlib.util.find_spec(f"nnscratch.layers.{module}") is None:
                pytest.skip(f"nnscratch.layers.{module} is not there yet")


def read(name: str):
    return nbformat.read(DOCS / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    notebook = read(name)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "a tutorial runs code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{name}: clear the outputs before committing"
        )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_within_a_minute(name, tmp_path):
    skip_without_requirements(name)
    notebook = read(name)
    client = nbclient.NotebookClient(
        notebook,
        timeout=SECONDS,
        kernel_name="python3",
        # Run in a scratch folder: anything a tutorial writes lands there.
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - start
    assert seconds < SECONDS, f"{name} took {seconds:.0f} s"
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            # A warning printed by the framework (or numpy) inside the kernel.
            text = output.get("text", "") if output.get("name") == "stderr" else ""
            assert "Warning" not in text, f"{name}, cell {index}: {text}"
