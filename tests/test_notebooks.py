"""Notebook hygiene, the shared setup cell, lint, and student notebooks failing only where exercises are stubs.

Lecture notebooks and homework masters are executed by nbval (see pytest's addopts); this file covers the rest.
"""

import subprocess
import sys

import nbformat
import pytest

from utils import notebooks, release
from utils.grading import ExerciseNotDone
from utils.paths import BUILD, HOMEWORK, LECTURES, ROOT

ALL = notebooks.all_notebooks()
STUDENTS = sorted(HOMEWORK.glob("*.ipynb"))


def rel(path):
    return str(path.relative_to(ROOT))


def test_expected_notebooks_exist():
    assert (LECTURES / "00_start_here.ipynb") in ALL
    assert STUDENTS, "no student homework notebooks"


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_valid_and_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"cell {i} has outputs: run `python -m utils.notebooks strip`"
            )


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_opens_with_the_setup_template(path):
    nb = nbformat.read(path, as_version=4)
    assert notebooks.first_code_cell(nb).source == notebooks.SETUP_CELL, (
        "setup cell differs from the template: run `python -m utils.notebooks sync` (and `python -m utils.release`)"
    )


def test_sync_and_strip_repair_a_notebook(tmp_path):
    nb = nbformat.read(LECTURES / "00_start_here.ipynb", as_version=4)
    cell = notebooks.first_code_cell(nb)
    cell.source, cell.outputs, cell.execution_count = "import os", [nbformat.v4.new_output("stream", text="x")], 1
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert notebooks.sync([path]) == [path] and notebooks.sync([path]) == []
    assert notebooks.main(["strip", str(path)]) == 0
    repaired = nbformat.read(path, as_version=4)
    assert notebooks.first_code_cell(repaired).source == notebooks.SETUP_CELL
    assert all(not c.get("outputs") for c in repaired.cells)


def test_ruff_lints_utils_tests_and_notebooks():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "utils", "tests", "conftest.py", "lectures", "homework"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", STUDENTS, ids=rel)
def test_student_notebook_fails_only_at_stubs(path, record_property, record_notebook):
    """Run a fresh student notebook end to end: every error must come from an unfinished exercise."""
    record_property("notebook", rel(path))
    nb, _, _ = notebooks.execute(path, allow_errors=True)
    record_notebook(rel(path), nb)
    allowed = {ExerciseNotDone.__name__, NotImplementedError.__name__}
    stub_cells = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        for error in errors:
            assert error.ename in allowed, f"cell {i} raised {error.ename}: {error.evalue}"
        if release.STUB in cell.source:
            stub_cells += 1
            assert errors and errors[0].ename == ExerciseNotDone.__name__, f"cell {i}: the stub was not checked"
    assert stub_cells > 0, "a student notebook without exercises"


def test_run_writes_executed_notebook_and_html(tmp_path, record_property):
    """`make lectures` executes notebooks into build/ as .ipynb and .html."""
    path = LECTURES / "00_start_here.ipynb"
    record_property("notebook", rel(path) + " (make lectures)")
    assert notebooks.run([path], out_dir=tmp_path)
    executed = nbformat.read(tmp_path / "lectures" / path.name, as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells)
    assert "profile: tiny" in (tmp_path / "lectures" / "00_start_here.html").read_text(encoding="utf-8")


def test_pytest_prints_a_wall_time_per_notebook():
    path = BUILD / "pytest" / "tiny.ipynb"  # inside the repository, so that its conftest.py applies
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "0", str(path)], cwd=ROOT, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]
    assert "notebook wall time" in result.stdout and "tiny.ipynb" in result.stdout
    assert "slowest 10 durations" in result.stdout
