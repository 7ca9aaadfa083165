"""Notebook tooling: the one setup-cell template, and commands to sync it, strip outputs and execute notebooks.

    python -m utils.notebooks sync              # write the template into lectures' and masters' first code cell
    python -m utils.notebooks strip             # remove outputs and execution counts (before committing)
    python -m utils.notebooks run [PATHS...]    # execute notebooks into build/ (.ipynb and .html)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

from utils.paths import BUILD, HOMEWORK, LECTURES, ROOT, SOLUTIONS
from utils.profiles import HEADLESS

REPO_URL = "https://github.com/genai-workbook/genai-workbook"  # where Colab clones the workbook from

SETUP_CELL = f'''\
# Setup (run, don't read). Generated from utils/notebooks.py: edit it there, then `python -m utils.notebooks sync`.
PROFILE = None  # None: $WORKBOOK_PROFILE, else "tiny" (offline, CPU). "hf": real Hugging Face models (Colab/GPU).

import sys

if "google.colab" in sys.modules:  # on Colab: fetch and install the workbook once per runtime
    import os
    import subprocess

    if not os.path.isdir("/content/workbook"):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "{REPO_URL}", "/content/workbook"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/workbook"], check=True)
    sys.path.insert(0, "/content/workbook")

from utils import grading, start

wb = start(PROFILE)'''


def source_notebooks() -> list[Path]:
    """Notebooks written by hand: lectures and homework masters (student notebooks are generated from masters)."""
    return sorted(LECTURES.glob("*.ipynb")) + sorted(SOLUTIONS.glob("*.ipynb"))


def all_notebooks() -> list[Path]:
    return source_notebooks() + sorted(HOMEWORK.glob("*.ipynb"))


def first_code_cell(nb) -> nbformat.NotebookNode | None:
    return next((cell for cell in nb.cells if cell.cell_type == "code"), None)


def strip(nb) -> bool:
    """Remove outputs and execution counts in place; return whether anything changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, changed = [], None, True
    return changed


def sync(paths: list[Path]) -> list[Path]:
    """Make the template the first code cell of each notebook; return the notebooks that changed."""
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        cell = first_code_cell(nb)
        if cell is None:
            raise ValueError(f"{path} has no code cell to hold the setup template.")
        if cell.source != SETUP_CELL:
            cell.source = SETUP_CELL
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def execute(path: Path, timeout: int = 900, allow_errors: bool = False):
    """Run a notebook top to bottom in its own folder; return (executed notebook, seconds, error or None)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ[HEADLESS] = "1"  # the kernel inherits it: sliders run once instead of waiting for a hand
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    t0 = time.perf_counter()
    try:
        client.execute()
        error = None
    except CellExecutionError as exc:
        error = exc
    return nb, time.perf_counter() - t0, error


def run(paths: list[Path], out_dir: Path = BUILD) -> bool:
    """Execute notebooks, writing each as .ipynb and .html under out_dir; print a time per notebook."""
    from nbconvert import HTMLExporter
    from tqdm.auto import tqdm

    ok = True
    for path in tqdm(paths, desc="notebooks", unit="nb"):
        nb, seconds, error = execute(path)
        target = out_dir / path.resolve().parent.relative_to(ROOT) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        html, _ = HTMLExporter().from_notebook_node(nb)
        target.with_suffix(".html").write_text(html, encoding="utf-8")
        status = "ok" if error is None else f"FAILED: {str(error).strip().splitlines()[-1]}"
        tqdm.write(f"{path.resolve().relative_to(ROOT)}: {seconds:.1f} s, {status} -> {target}")
        ok &= error is None
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sync", "strip", "run"])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all; for run: the lectures)")
    parser.add_argument("--out", type=Path, default=BUILD, help="output folder for run (default: build/)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return 0 if run(args.paths or sorted(LECTURES.glob("*.ipynb")), args.out) else 1
    if args.command == "sync":
        paths = args.paths or source_notebooks()
        changed = sync(paths)
    else:
        paths, changed = args.paths or all_notebooks(), []
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            if strip(nb):
                nbformat.write(nb, path)
                changed.append(path)
    print(f"{args.command}: {len(changed)} of {len(paths)} notebooks changed", *changed, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
