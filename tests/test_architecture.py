"""The package's data flow: each layer imports only from layers below it (or its own),
and no import circle, including imports written inside functions."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "leaf_plugin"

# bottom to top; a module may import from its own layer and the ones before it. The package
# itself (leaf_plugin/__init__.py, the front door) is above them all: nothing imports it.
LAYERS = [
    ["errors", "flags", "logs", "checkpoint", "imagefiles"],
    ["layers", "losses", "nets", "data"],
    ["history", "plots", "ambiguity"],
    ["runtime"],
    ["algorithms"],
    ["arguments", "pretrain"],
    ["runs"],
    ["report", "deploy", "training"],
    ["serve"],
    ["cli"],
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
PACKAGE_LAYER = len(LAYERS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def imports_of(path: Path) -> Set[str]:
    """Every ``leaf_plugin`` module ``path`` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "leaf_plugin")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "leaf_plugin":
                continue
            for alias in node.names:  # ``from .pkg import module`` imports the module itself
                sub = f"{target}.{alias.name}"
                found.add(sub if is_module(sub) else target)
    return found


def import_graph() -> Dict[str, Set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph[name] = {t for t in imports_of(path) if t != name}
    return graph


def layer(module: str) -> int:
    if module == "leaf_plugin":
        return PACKAGE_LAYER
    top = module.split(".")[1]
    assert top in LAYER_OF, f"module '{module}' belongs to no layer; add '{top}' to LAYERS"
    return LAYER_OF[top]


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_import_walker_resolves_relative_imports(tmp_path):
    found = imports_of(PACKAGE / "runtime" / "core.py")
    assert {"leaf_plugin.runtime.checkpointing", "leaf_plugin.checkpoint", "leaf_plugin.data"} <= found


def test_no_module_imports_from_a_higher_layer():
    wrong = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
             for m, targets in import_graph().items() for t in sorted(targets) if layer(t) > layer(m)]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert not cycle, " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_no_module_is_over_about_300_lines(path):
    assert len(path.read_text().splitlines()) <= 320, f"{module_name(path)} is over about 300 lines"


def test_the_architecture_doc_lists_the_layers_in_this_order():
    """docs/architecture.md's table shows LAYERS, bottom to top: row i names the modules of layer i."""
    import re

    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and not line.startswith("| layer")]
    assert len(rows) == len(LAYERS) + 1, "one row per layer, then the package"
    for names, row in zip(LAYERS, rows):
        named = [t.rstrip("/") for t in re.findall(r"`([\w/]+)`", row) if t.rstrip("/") in LAYER_OF]
        assert sorted(set(named)) == sorted(names), (row[:60], names)
