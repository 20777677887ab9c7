"""The layer rules of styletalker_core, read from the source (docs/architecture.md draws them).

Every import of every module counts: module level, inside functions, and under
``if TYPE_CHECKING:`` (a type-only import is still a dependency a reader has to follow).
A unit is a sub-package (``checkpoint``) or a top-level module (``errors``) of the core;
units sit in the layers below, lowest first. The rules:

1. an import never goes from a unit to a unit of a higher layer;
2. no cycle between units, inside a layer either, and none between modules (a function-level
   import that only hides a cycle counts);
3. the core never imports a plugin package (plugins sit above the core and are reached
   through entry points and registries), except the listed, guarded fast paths.

A failure prints each offending import with its file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "styletalker_core"
ROOT_UNIT = "__init__"  # styletalker_core/__init__.py (the version string)

# Lowest first. A unit may import units of its own layer or of lower ones.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("foundation", frozenset({ROOT_UNIT, "errors", "paths", "signals", "devices", "io"})),
    ("interfaces", frozenset({"interfaces"})),
    ("registries", frozenset({"registry", "plugin_host"})),
    ("components", frozenset({"nn", "losses", "media", "checkpoint", "data", "model"})),
    ("recipes", frozenset({"recipe"})),
    ("engines", frozenset({"evaluate", "train", "sample"})),
    ("applications", frozenset({"ablate", "app", "testing"})),
    ("commands", frozenset({"cli"})),
)
LAYER_OF = {unit: index for index, (_, units) in enumerate(LAYERS) for unit in units}

# (importing module, imported plugin module) -> why the core may reach into a plugin there.
PLUGIN_IMPORTS_ALLOWED = {
    ("styletalker_core.sample.stream", "styletalker_audio_mel.encoder"):
        "a fast path for the built-in mel encoder, guarded by ImportError: without the plugin it is skipped",
}


@attrs.frozen
class Import:
    """One import statement's target, where it is written."""

    source: str  # importing module, dotted
    target: str  # imported module, dotted
    file: str  # relative to the project folder
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.source} imports {self.target}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted((root / PACKAGE).rglob("*.py"))}


def plugin_packages() -> set[str]:
    return {path.parent.name for path in (ROOT / "plugins").glob("*/__init__.py")}


def imports_of(path: Path, modules: dict[str, Path], root: Path = ROOT) -> Iterator[Import]:
    """Every module ``path`` imports, at any depth of its syntax tree."""
    source = module_name(path, root)
    file = str(path.relative_to(root))
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, file, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
            if len(submodules) < len(node.names):  # names defined in ``target`` itself
                yield Import(source, target, file, node.lineno)
            for submodule in submodules:  # `from styletalker_core import interfaces` imports a module
                yield Import(source, submodule, file, node.lineno)


def unit_of(module: str) -> str:
    """``styletalker_core.data.shards`` -> ``data``; ``styletalker_core`` -> the root unit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_UNIT


def core_imports(root: Path = ROOT) -> list[Import]:
    modules = core_modules(root)
    return [found for path in modules.values() for found in imports_of(path, modules, root)]


def unit_edges(imports: list[Import]) -> dict[tuple[str, str], list[Import]]:
    """(importing unit, imported unit) -> the imports that make the arrow; imports outside the core left out."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for found in imports:
        if found.target == PACKAGE or found.target.startswith(PACKAGE + "."):
            a, b = unit_of(found.source), unit_of(found.target)
            if a != b:
                edges.setdefault((a, b), []).append(found)
    return edges


def module_edges(imports: list[Import], modules: dict[str, Path]) -> dict[tuple[str, str], list[Import]]:
    """(importing module, imported module) -> the imports; ``from m import name`` counts as importing m."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for found in imports:
        target = found.target
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != found.source:
            edges.setdefault((found.source, target), []).append(found)
    return edges


def cycles(edges: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan), each sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_unit_of_the_core_has_a_layer():
    units = {unit_of(name) for name in core_modules()}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"units of styletalker_core without a layer: {missing}; add each to LAYERS in {Path(__file__).name}"


def upward_imports(edges: dict[tuple[str, str], list[Import]], layers: tuple[tuple[str, frozenset[str]], ...]) -> list[str]:
    """Each import from a unit to a unit of a higher layer, with its file, line and layers."""
    layer_of = {unit: index for index, (_, units) in enumerate(layers) for unit in units}
    upward = []
    for (a, b), found in sorted(edges.items()):
        if a in layer_of and b in layer_of and layer_of[b] > layer_of[a]:
            upward += [f"{i.where()} (layer {layers[layer_of[a]][0]} -> higher layer {layers[layer_of[b]][0]})" for i in found]
    return upward


def test_no_import_goes_up_a_layer():
    upward = upward_imports(unit_edges(core_imports()), LAYERS)
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def _cycle_report(edges: dict[tuple[str, str], list[Import]]) -> str:
    report = []
    for component in cycles(edges):
        report.append(f"cycle between {', '.join(component)}:")
        for (a, b), found in sorted(edges.items()):
            if a in component and b in component:
                report += [f"  {i.where()}" for i in found]
    return "\n".join(report)


def test_no_cycle_between_units():
    report = _cycle_report(unit_edges(core_imports()))
    assert not report, report


def test_no_cycle_between_modules():
    report = _cycle_report(module_edges(core_imports(), core_modules()))
    assert not report, report


def test_the_core_reaches_plugins_only_through_the_registries():
    plugins = plugin_packages()
    assert "styletalker_stylegan2" in plugins  # the scan sees the plugin folder
    reaching = [found for found in core_imports() if found.target.split(".")[0] in plugins
                and (found.source, found.target) not in PLUGIN_IMPORTS_ALLOWED]
    assert not reaching, "the core imports plugin packages:\n" + "\n".join(i.where() for i in reaching)


# Units that must stay leaves: what of the core each may import besides itself.
LEAVES = {"errors": set(), "io": set(), "devices": {"errors"}, "interfaces": {"errors"}}


@pytest.mark.parametrize("unit", sorted(LEAVES))
def test_leaf_units_import_only_what_they_are_allowed(unit):
    allowed = LEAVES[unit] | {unit}
    wrong = [found for found in core_imports() if unit_of(found.source) == unit
             and (found.target == PACKAGE or found.target.startswith(PACKAGE + ".")) and unit_of(found.target) not in allowed]
    assert not wrong, "\n".join(i.where() for i in wrong)


# -- the checker itself, on made-up modules --------------------------------------------------------


@pytest.fixture
def fake_core(tmp_path: Path) -> Path:
    root = tmp_path / PACKAGE
    (root / "low").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low" / "__init__.py").write_text("")
    (root / "low" / "a.py").write_text("def f():\n    from styletalker_core.high import b\n")
    (root / "high.py").write_text("from . import low\nfrom .low.a import f\n")
    return root


def test_checker_sees_function_level_relative_and_submodule_imports(fake_core):
    found = core_imports(fake_core.parent)
    where = {i.where() for i in found}
    assert "styletalker_core/low/a.py:2: styletalker_core.low.a imports styletalker_core.high" in where  # in a function
    assert "styletalker_core/high.py:1: styletalker_core.high imports styletalker_core.low" in where  # `from . import low`
    assert "styletalker_core/high.py:2: styletalker_core.high imports styletalker_core.low.a" in where  # relative
    assert cycles(unit_edges(found)) == [["high", "low"]]
    assert cycles(module_edges(found, core_modules(fake_core.parent))) == [["styletalker_core.high", "styletalker_core.low.a"]]
    layers = (("bottom", frozenset({"low"})), ("top", frozenset({"high"})))
    assert upward_imports(unit_edges(found), layers) == [
        "styletalker_core/low/a.py:2: styletalker_core.low.a imports styletalker_core.high (layer bottom -> higher layer top)"]
