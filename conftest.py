"""Repository-wide pytest hooks: one torch thread per process and one worker per core, a wall time per executed
notebook, and the sanitized outputs of every executed notebook when $WORKBOOK_RECORD_OUTPUTS names a folder.

Tiny models spend most of their time in Python, so two processes of one thread each finish the suite sooner than
one process of two threads. The thread count is fixed whatever the number of workers (sums split across threads
add in another order), so a notebook prints the same numbers alone or beside another: compare two runs with
`WORKBOOK_RECORD_OUTPUTS=build/a pytest -n 0` and `WORKBOOK_RECORD_OUTPUTS=build/b pytest`, then `diff -r`.
"""

import configparser
import hashlib
import os
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

# Before numpy or torch is imported here or in a worker or kernel started from here: they all inherit these.
os.environ.setdefault("WORKBOOK_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", os.environ["WORKBOOK_THREADS"])  # numpy's BLAS, torch's default
os.environ.setdefault("RAYON_NUM_THREADS", os.environ["WORKBOOK_THREADS"])  # the tokenizers library

from utils.notebooks import HEADLESS  # noqa: E402
from utils.paths import ROOT  # noqa: E402
from utils.runtime import available_cores, set_threads  # noqa: E402

set_threads()
os.environ[HEADLESS] = "1"  # nbval's kernels inherit it: sliders run once instead of waiting for a hand
RECORD = os.environ.get("WORKBOOK_RECORD_OUTPUTS")
MAX_WORKERS = 4  # a worker and its notebook kernel: up to 2.8 GB a process seen on a 2-core run
_notebook_seconds: dict[str, float] = defaultdict(float)
_started = time.perf_counter()


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pytest's addopts): one worker per usable core, at most MAX_WORKERS."""
    return min(available_cores(), MAX_WORKERS)


def pytest_xdist_make_scheduler(config, log):
    """Hand out work in units a worker runs whole, biggest first (xdist's scope scheduling): a notebook's cells,
    which share one kernel; tests/test_tinyworld.py, whose card tests share one measurement; every other test alone."""
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return path if path.endswith(".ipynb") or path == "tests/test_tinyworld.py" else nodeid

    return Units(config, log)


def pytest_runtest_logreport(report):
    """nbval items are `path.ipynb::Cell N`; other tests report a run with record_property("notebook", path)."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
    elif report.when == "call":
        for key, value in report.user_properties:
            if key == "notebook":
                _notebook_seconds[value] += report.duration


def pytest_terminal_summary(terminalreporter):
    if _notebook_seconds:
        terminalreporter.section("notebook wall time")
        for path, seconds in sorted(_notebook_seconds.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {Path(path)}")
        terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  all notebooks")
    terminalreporter.write_line(f"test session wall time: {time.perf_counter() - _started:.0f} s")


# --- recording outputs, to check that runs side by side print what a run alone prints --------------------------------

_sanitize = configparser.ConfigParser(interpolation=None)
_sanitize.read(ROOT / "tests" / "nbval_sanitize.cfg")
SANITIZE = [(re.compile(section["regex"]), section["replace"]) for section in _sanitize.values() if "regex" in section]
SANITIZE += [(re.compile(r"\bT_[0-9a-f]{5}(?=[_\s\"])"), "T_ID"),  # the random id of a styled pandas table
             (re.compile(r"ipykernel_\d+"), "ipykernel_PID"),  # where a warning was raised
             (re.compile(re.escape(str(ROOT))), "ROOT")]  # the checkout, in warnings' paths


def outputs_text(outputs) -> str:
    """A cell's outputs as text: its stdout, its stderr (each whole: where a stream is cut into messages depends on
    timing), then its other outputs, with volatile parts (timings, addresses, progress bars) replaced as nbval does
    and images as their hash."""
    streams, parts = {"stdout": "", "stderr": ""}, []
    for out in outputs:
        if out.get("output_type") == "stream":
            streams[out["name"]] += out["text"]
        parts += [f"{out['ename']}: {out['evalue']}"] if "ename" in out else []
        for mime, value in sorted(out.get("data", {}).items()):
            if mime == "application/vnd.jupyter.widget-view+json":  # a progress bar's widget: a random model id
                parts.append(mime)
                continue
            value = "".join(value) if isinstance(value, list) else str(value)
            parts.append(value if mime.startswith("text/") else f"{mime} {hashlib.sha256(value.encode()).hexdigest()}")
    text = "\n".join([streams["stdout"], streams["stderr"], *parts])
    for pattern, replace in SANITIZE:
        text = pattern.sub(replace, text)
    return text


def record(name: str, cells: list[tuple[int, list]], fresh: bool = True) -> None:
    """Write (cell number, outputs) pairs of the notebook `name` under $WORKBOOK_RECORD_OUTPUTS, if set."""
    if not RECORD:
        return
    path = Path(RECORD) / (re.sub(r"[^\w.-]+", "_", name) + ".txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w" if fresh else "a", encoding="utf-8") as f:
        for number, outputs in cells:
            f.write(f"### cell {number}\n{outputs_text(outputs)}\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        if getattr(item, "test_outputs", None) is not None:  # an nbval cell
            record(item.nodeid.split("::")[0], [(item.cell_num, item.test_outputs)], fresh=item.cell_num == 0)


@pytest.fixture
def record_notebook():
    """record_notebook(name, nb): record a notebook executed by a test (student copies, the hf profile)."""
    return lambda name, nb: record(name, [(i, c.get("outputs", [])) for i, c in enumerate(nb.cells)])
