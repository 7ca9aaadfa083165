"""Generate student homework notebooks from the masters in homework/solutions/.

    python -m utils.release            # every master -> homework/<name>.ipynb
    python -m utils.release --force    # also overwrite notebooks a student has edited (a backup is kept)

Code between `### BEGIN SOLUTION` and `### END SOLUTION` (the nbgrader convention) becomes a stub that raises
NotImplementedError; in a markdown cell it becomes "*Your answer here.*". Each student notebook records a
digest of what was generated, so a notebook a student has since edited is never overwritten silently.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import nbformat

from utils.notebooks import strip
from utils.paths import HOMEWORK, SOLUTIONS

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "raise NotImplementedError(\"Exercise: write your solution here.\")"
ANSWER = "*Your answer here.*"
_BLOCK = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$", re.S | re.M)


class ReleaseError(RuntimeError):
    pass


def strip_solutions(source: str, cell_type: str) -> str:
    """Replace every solution block in a cell's source by a stub (code) or an answer prompt (markdown)."""
    if source.count(BEGIN) != source.count(END):
        raise ReleaseError(f"unbalanced {BEGIN!r} / {END!r} in:\n{source[:300]}")
    if cell_type == "code":
        return _BLOCK.sub(lambda m: f"{m.group(1)}{STUB}", source)
    return _BLOCK.sub(ANSWER, source)


def digest(nb) -> str:
    """A fingerprint of what a student could have edited: cell types and sources, not outputs."""
    cells = [(cell.cell_type, cell.source) for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def student_version(master_path: Path):
    """The student notebook for a master: solutions stubbed, outputs stripped, the digest recorded."""
    nb = copy.deepcopy(nbformat.read(master_path, as_version=4))
    strip(nb)
    for i, cell in enumerate(nb.cells):
        try:
            cell.source = strip_solutions(cell.source, cell.cell_type)
        except ReleaseError as exc:
            raise ReleaseError(f"{master_path.name}, cell {i}: {exc}") from None
    nb.metadata["workbook"] = {"generated_from": f"solutions/{master_path.name}", "digest": digest(nb)}
    return nb


def release_one(master_path: Path, out_dir: Path = HOMEWORK, force: bool = False) -> str:
    """Write one student notebook; return what happened: "created", "updated", "unchanged" or "overwrote"."""
    new = student_version(master_path)
    target = out_dir / master_path.name
    if not target.exists():
        nbformat.write(new, target)
        return "created"
    old = nbformat.read(target, as_version=4)
    edited = digest(old) != old.metadata.get("workbook", {}).get("digest")
    if not edited and digest(old) == digest(new):
        return "unchanged"
    if edited and not force:
        raise ReleaseError(
            f"{target} has been edited since it was generated; not overwriting it.\n"
            "  Rename it to keep your work, or pass --force (a backup copy is kept next to it)."
        )
    if edited:
        backup = target.with_name(f"{target.stem}.backup-{time.strftime('%Y%m%d-%H%M%S')}.ipynb")
        backup.write_bytes(target.read_bytes())
    nbformat.write(new, target)
    return "overwrote" if edited else "updated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("masters", nargs="*", type=Path, help="master notebooks (default: all in homework/solutions/)")
    parser.add_argument("--force", action="store_true", help="overwrite edited student notebooks, keeping a backup")
    args = parser.parse_args(argv)
    failed = False
    for master in args.masters or sorted(SOLUTIONS.glob("*.ipynb")):
        try:
            print(f"{master.name}: {release_one(master, HOMEWORK, force=args.force)}")
        except ReleaseError as exc:
            print(f"{master.name}: refused. {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
