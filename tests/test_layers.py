"""No import circle among the package's modules, counting the imports inside functions (a lazy import is
still a dependency; one under ``if TYPE_CHECKING:`` names a type only and never runs, as import-linter's
``exclude_type_checking_imports`` has it). The layers themselves are import-linter
contracts in pyproject.toml (``lint-imports`` in .ci/run); this test needs nothing but the sources."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where each installed package's sources are (pyproject.toml's [tool.setuptools.package-dir])
SOURCES = {
    "xltransfer": ROOT / "xltransfer",
    "xltransfer.methods": ROOT / "methods",
    "xltransfer.tasks": ROOT / "tasks",
}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports anywhere in its file (``from P import m`` names module
    P.m when it is one, else P)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import xltransfer.data.ud as ud` and the like
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _run_time_nodes(tree: ast.AST):
    """Every node, functions' bodies included, but not the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def test_no_import_circle_counting_imports_inside_functions():
    graph = import_graph()
    assert "xltransfer.grid" in graph and graph["xltransfer.grid"], "the walk found the package's imports"
    circles = cycles(graph)
    assert not circles, "import circles (a lazy import counts): " + "; ".join(
        " <-> ".join(c) for c in circles
    )


def test_the_walk_sees_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": set(), "c": set()}
    assert cycles(graph) == []
    tree = ast.parse("def f():\n    from xltransfer import a\nif TYPE_CHECKING:\n    import b\n")
    found = [n for n in _run_time_nodes(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [type(n) for n in found] == [ast.ImportFrom]  # the function's import, not the type-only one
    graph["b"].add("a")
    assert cycles(graph) == [["a", "b"]]


def test_the_store_the_report_and_the_methods_never_import_the_api_the_cli_or_execute():
    graph = import_graph()
    above = ("xltransfer.api", "xltransfer.cli", "xltransfer.execute")
    for name, targets in graph.items():
        if name.startswith(("xltransfer.store", "xltransfer.reporting", "xltransfer.methods")):
            wrong = sorted(t for t in targets if t.startswith(above))
            assert not wrong, f"{name} imports {wrong}"
