"""Packaging: pyproject and environment.yml agree, CI runs the README's test command, the package imports."""

import re
import tomllib

import yaml

from utils.paths import ROOT


def normalise(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement.strip().lower()).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {normalise(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "-e ." in pip_section


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S).group(1).strip()
    assert command in ci.splitlines(), f"README's test command {command!r} is not a line of .ci/run"


def test_setup_installs_the_cpu_torch_first():
    makefile = (ROOT / "Makefile").read_text()
    torch_line = next(i for i, line in enumerate(makefile.splitlines()) if "torch==" in line)
    package_line = next(i for i, line in enumerate(makefile.splitlines()) if "-e '.[dev]'" in line)
    assert torch_line < package_line, "torch must be installed (CPU build) before the package pulls it in"
