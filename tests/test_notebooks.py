"""The notebooks in notebooks/ run top to bottom without an error, on this interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def execute(notebook: nbformat.NotebookNode) -> None:
    """Run every cell in a fresh "python3" kernel; a cell that raises fails the caller."""
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},  # the kernel's working directory
    )
    client.execute()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_without_errors(path: Path) -> None:
    execute(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert (cell.outputs, cell.execution_count) == ([], None), cell.source[:60]


def test_notebook_kernel_is_this_interpreter() -> None:
    # "python3" is the kernelspec in this environment, which jupyter_client launches with
    # sys.executable; a user-level kernelspec could point elsewhere and test the wrong install.
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; sys.prefix")])
    execute(notebook)
    assert notebook.cells[0].outputs[0]["data"]["text/plain"] == repr(sys.prefix)
