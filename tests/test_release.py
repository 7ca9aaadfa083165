"""Homework release: solutions become stubs, nothing a student wrote is lost, students stay in sync with masters."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from utils import release
from utils.paths import HOMEWORK, SOLUTIONS

MASTERS = sorted(SOLUTIONS.glob("*.ipynb"))


@pytest.fixture
def master(tmp_path):
    nb = new_notebook(
        cells=[
            new_markdown_cell("# HW"),
            new_code_cell(
                "def f(x):\n    \"\"\"Double x.\"\"\"\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n"
                "    ### END SOLUTION\n\ncheck(f)"
            ),
            new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        ]
    )
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="secret output")]
    nb.cells[1].execution_count = 3
    (tmp_path / "solutions").mkdir()
    path = tmp_path / "solutions" / "hw99.ipynb"
    nbformat.write(nb, path)
    return path


def test_solutions_become_stubs(master, tmp_path):
    assert release.release_one(master, out_dir=tmp_path) == "created"
    student = nbformat.read(tmp_path / "hw99.ipynb", as_version=4)
    code, answer = student.cells[1], student.cells[2]
    assert "2 * x" not in code.source and "Because" not in answer.source
    assert f"    {release.STUB}\n\ncheck(f)" in code.source and '"""Double x."""' in code.source
    assert release.ANSWER in answer.source
    assert code.outputs == [] and code.execution_count is None
    namespace = {"check": lambda fn: None}
    exec(code.source, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_release_is_idempotent(master, tmp_path):
    release.release_one(master, out_dir=tmp_path)
    before = (tmp_path / "hw99.ipynb").read_bytes()
    assert release.release_one(master, out_dir=tmp_path) == "unchanged"
    assert (tmp_path / "hw99.ipynb").read_bytes() == before


def test_master_change_updates_an_untouched_student_notebook(master, tmp_path):
    release.release_one(master, out_dir=tmp_path)
    nb = nbformat.read(master, as_version=4)
    nb.cells[0].source = "# HW, revised"
    nbformat.write(nb, master)
    assert release.release_one(master, out_dir=tmp_path) == "updated"
    assert nbformat.read(tmp_path / "hw99.ipynb", as_version=4).cells[0].source == "# HW, revised"


def test_student_work_is_never_lost(master, tmp_path):
    release.release_one(master, out_dir=tmp_path)
    target = tmp_path / "hw99.ipynb"
    nb = nbformat.read(target, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace(release.STUB, "return x + x")
    nbformat.write(nb, target)
    work = target.read_bytes()
    with pytest.raises(release.ReleaseError, match="edited"):
        release.release_one(master, out_dir=tmp_path)
    assert target.read_bytes() == work
    assert release.release_one(master, out_dir=tmp_path, force=True) == "overwrote"
    backups = list(tmp_path.glob("hw99.backup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == work


def test_running_a_student_notebook_is_not_an_edit(master, tmp_path):
    release.release_one(master, out_dir=tmp_path)
    target = tmp_path / "hw99.ipynb"
    nb = nbformat.read(target, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="ran")]
    nbformat.write(nb, target)
    assert release.release_one(master, out_dir=tmp_path) == "unchanged"


def test_unbalanced_markers_are_refused(tmp_path):
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n")])
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(release.ReleaseError, match="bad.ipynb, cell 0: unbalanced"):
        release.release_one(path, out_dir=tmp_path)


def test_cli_refuses_with_a_nonzero_exit(master, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(release, "HOMEWORK", tmp_path)
    release.release_one(master, out_dir=tmp_path)
    target = tmp_path / "hw99.ipynb"
    nb = nbformat.read(target, as_version=4)
    nb.cells[0].source = "# my notes"
    nbformat.write(nb, target)
    assert release.main([str(master)]) == 1
    assert "refused" in capsys.readouterr().err


@pytest.mark.parametrize("master_path", MASTERS, ids=lambda p: p.name)
def test_student_notebook_in_sync_with_master(master_path):
    student = HOMEWORK / master_path.name
    assert student.exists(), f"run `python -m utils.release` to generate {student.name}"
    expected = nbformat.writes(release.student_version(master_path))
    assert student.read_text(encoding="utf-8").rstrip() == expected.rstrip(), (
        f"{student.name} is out of sync with its master: run `python -m utils.release`"
    )


def test_every_master_has_exercises():
    assert MASTERS, "no homework masters found"
    for path in MASTERS:
        assert release.BEGIN in path.read_text(encoding="utf-8"), f"{path.name} has no solution block"
