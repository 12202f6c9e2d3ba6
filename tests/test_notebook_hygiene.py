"""The notebooks are committed with outputs cleared, numbered, and opening the way every course notebook does."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_six_numbered_notebooks():
    names = [p.name[:3] for p in NOTEBOOKS]
    assert names == ["01_", "02_", "03_", "04_", "05_", "06_"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, c in enumerate(notebook.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_title_and_setup(path):
    notebook = nbformat.read(path, as_version=4)
    first, second = notebook.cells[0], notebook.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "first cell: a title"
    assert "learn" in first.source, "first cell says what the reader will learn"
    assert second.cell_type == "code" and "course_settings()" in second.source, "second cell: the setup"
    assert "print_versions" in second.source
