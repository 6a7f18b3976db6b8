"""The code's shape, read from the source: no import circle between the project's modules, and
no module over 500 lines unless the README's "Module sizes" note says why.

Imports are read with `ast`, those inside functions included (a function-level import is still
a dependency, only a later one); those under `if TYPE_CHECKING:` are left out (they never run).
A module loaded by name at run time (`importlib.import_module("flows.weekly_report")`, the
command line's way of starting a flow after its checks) is data, not an import.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks", "clients", "deployments", "sandbox")
SIZED = (*PACKAGES, "benchmarks")  # tests/ are sized by their own split, not here
MAX_LINES = 500


def _modules(folders: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(tree: ast.AST, here: str, is_package: bool) -> set[str]:
    """Every module name an import statement in `tree` names (`from a import b`: `a.b` when
    that is a module, else `a`), at any depth except `if TYPE_CHECKING:` blocks."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = here.split(".") if is_package else here.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(filter(None, [*package, base]))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = _modules(PACKAGES)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        named = _imported(tree, name, path.name == "__init__.py")
        graph[name] = {n for n in named if n in modules and n != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_circle_between_modules():
    circles = cycles(import_graph())
    shown = ["  " + " <-> ".join(c) for c in circles]
    assert circles == [], "modules that import each other (directly or round a loop):\n" + \
        "\n".join(shown)


def test_the_cycle_finder_finds_a_circle_through_a_function_level_import():
    tree = ast.parse("def f():\n    from tasks import settings\n")
    graph = {"tasks.preflight": {n for n in _imported(tree, "tasks.preflight", False)
                                 if n == "tasks.settings"},
             "tasks.settings": {"tasks.preflight"}, "tasks.errors": set()}
    assert cycles(graph) == [["tasks.preflight", "tasks.settings"]]


def _size_exceptions() -> dict[str, str]:
    """The README's "Module sizes" paragraph: every `path.py` it names -> the paragraph."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^Module sizes\b.*?(?=\n\s*\n|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, 'README.md has no "Module sizes" note (a paragraph starting "Module sizes")'
    note = match.group(0)
    return {path: note for path in re.findall(r"`([\w/]+\.py)`", note)
            if path.split("/")[0] in SIZED}


def test_no_module_over_500_lines_unless_the_readme_says_why():
    allowed = _size_exceptions()
    sizes = {path.relative_to(ROOT).as_posix():
             len(path.read_text(encoding="utf-8").splitlines())
             for path in _modules(SIZED).values()}
    over = sorted(f"{p} ({n} lines)" for p, n in sizes.items() if n > MAX_LINES
                  and p not in allowed)
    assert over == [], ("over 500 lines, with no reason in README's Module sizes note: "
                        + ", ".join(over))
    stale = sorted(p for p in allowed if sizes.get(p, 0) <= MAX_LINES)
    assert stale == [], ("README's Module sizes note names modules no longer over 500 lines "
                         "(or gone): " + ", ".join(stale))
