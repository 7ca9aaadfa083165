"""Repository-wide pytest hooks: torch threads for the cores present, and a wall time per executed notebook."""

import os
import time
from collections import defaultdict
from pathlib import Path

from utils.notebooks import HEADLESS
from utils.runtime import set_threads

set_threads()
os.environ[HEADLESS] = "1"  # nbval's kernels inherit it: sliders run once instead of waiting for a hand
_notebook_seconds: dict[str, float] = defaultdict(float)
_started = time.perf_counter()


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
