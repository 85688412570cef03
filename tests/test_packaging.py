"""The set-up files agree with each other: one dependency list, one package name."""
from __future__ import annotations

import tomllib

import yaml

from isfr.core.paths import REPO_ROOT


def test_environment_yml_installs_the_package_from_pyproject():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert env["name"] == "isfr"
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip_section["pip"] == ["-e .[dev]"], "environment.yml must install from pyproject.toml, not list packages"
    assert any(str(d).startswith("python") for d in env["dependencies"])


def test_pyproject_pins_torch_and_names_extras():
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
    assert {"dev", "identity"} <= set(meta["optional-dependencies"])
    assert meta["scripts"]["isfr"] == "isfr.apps.cli:main"


def test_ci_runs_the_readme_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    for cmd in ("make setup", "make test"):
        assert cmd in readme, f"README does not show `{cmd}`"
        assert cmd in ci, f".ci/run does not call `{cmd}`"
