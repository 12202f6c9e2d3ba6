"""The package's layout is its architecture: stages in folders, imports only downward, no cycle, small
modules.

Imports are read from the source with ``ast`` (nothing is imported), every one of them: at module level and
inside functions alike, since an import inside a function hides a dependency but does not remove it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "utils"

# The stages in the order data flows through them. A module may import its own stage or an earlier one.
STAGES = ("foundation", "data", "models", "inputs", "training", "evaluation", "serving", "commands")
FOUNDATION = ("utils", "utils.errors", "utils.paths", "utils.config", "utils.plots")
COMMANDS = ("utils.cli", "utils.course", "utils.__main__")
MAX_LINES = 600


def module_names(root: Path) -> dict[str, Path]:
    """{dotted name: file} of every module of the package at ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its source."""
    package = name.split(".")[0]
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != package:
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    targets = set()
    for target in found:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            targets.add(target)
    return targets


def import_graph(root: Path) -> dict[str, set[str]]:
    names = module_names(root)
    return {name: imports_of(name, path, set(names)) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def stage_of(name: str) -> int:
    if name in FOUNDATION:
        return STAGES.index("foundation")
    if name in COMMANDS:
        return STAGES.index("commands")
    stage = name.split(".")[1]
    if stage not in STAGES:
        raise ValueError(f"{name} belongs to no stage: put it in one of the folders {STAGES[1:-1]}, or list "
                         f"it in FOUNDATION or COMMANDS of tests/test_architecture.py")
    return STAGES.index(stage)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a later stage by an earlier one."""
    return sorted(f"{source} ({STAGES[stage_of(source)]}) -> {target} ({STAGES[stage_of(target)]})"
                  for source, targets in graph.items() for target in targets
                  if stage_of(target) > stage_of(source))


# ----------------------------------------------------------------------------- the package
def test_the_package_has_no_import_cycle() -> None:
    assert find_cycle(import_graph(PACKAGE_DIR)) is None


def test_no_stage_imports_a_later_stage() -> None:
    assert upward_imports(import_graph(PACKAGE_DIR)) == []


def test_every_module_belongs_to_a_stage() -> None:
    for name in module_names(PACKAGE_DIR):
        stage_of(name)


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines())
               for name, path in module_names(PACKAGE_DIR).items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


# ----------------------------------------------------------------------------- the checks themselves
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "utils"
    for relative, source in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def test_a_cycle_made_on_purpose_is_found_even_inside_functions(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "data/__init__.py": "",
        "data/video.py": "from utils.data import keypoints\n",
        "data/keypoints.py": "def f():\n    from utils.data.features import load\n",
        "data/features.py": "def load():\n    from utils.data import video\n",
    })
    cycle = find_cycle(import_graph(root))
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"utils.data.video", "utils.data.keypoints", "utils.data.features"}


def test_an_upward_import_made_on_purpose_is_found(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "data/__init__.py": "",
        "data/video.py": "def f():\n    from utils.training import loop\n",
        "training/__init__.py": "",
        "training/loop.py": "from utils.data import video\n",
    })
    graph = import_graph(root)
    assert find_cycle(graph) == ["utils.data.video", "utils.training.loop", "utils.data.video"]
    assert upward_imports(graph) == ["utils.data.video (data) -> utils.training.loop (training)"]


def test_a_module_outside_the_stages_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="utils.helpers belongs to no stage"):
        stage_of("utils.helpers")
