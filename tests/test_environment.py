"""environment.yml and pyproject.toml must declare the same dependencies (no conda here)."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda name


def pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return project, {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in reqs}


def environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", dep)
        conda[match.group(1).lower()] = match.group(2).replace(" ", "")
    return env, conda, pip


def _canon(spec: str) -> set[str]:
    return set(filter(None, spec.replace(" ", "").split(",")))


def test_same_packages_and_specifiers():
    _, deps = pyproject()
    _, conda, _ = environment()
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in deps.items()}
    conda = {k: v for k, v in conda.items() if k not in ("python", "pip")}
    assert set(conda) == set(expected), (
        f"only in environment.yml: {sorted(set(conda) - set(expected))}; "
        f"only in pyproject.toml: {sorted(set(expected) - set(conda))}"
    )
    for name, spec in expected.items():
        assert _canon(conda[name]) == _canon(spec), f"{name}: {conda[name]!r} vs {spec!r}"


def test_python_version_and_pip_section():
    project, _ = pyproject()
    env, conda, pip = environment()
    assert env["name"] == "ganlab"
    python = conda["python"].lstrip("=")
    assert Requirement(f"python{project['requires-python']}").specifier.contains(python)
    assert python == "3.11"
    assert "-e ." in pip


def test_ranges_not_exact_pins():
    _, deps = pyproject()
    assert not [n for n, s in deps.items() if s.startswith("==")], "declare ranges, not pins"
