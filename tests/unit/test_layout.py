"""The layout is the architecture: these rules read every import with `ast` and name each break.

    R1  orchestrator/ (its cli/ aside) never imports workers/ or orchestrator/demo/;
        workers/ never imports the demo.
    R2  workflow modules import only the contracts, temporalio, pydantic and the standard library.
    R3  modules outside api/, web/ and cli/ never import them (the one app module, which composes
        the two edges, aside); api/ never imports web/.
    R4  no module over 500 lines.
    R5  no import cycles between modules.
    R6  nothing named demo, sample or devstack outside orchestrator/demo/.

Imports inside functions count: a lazy import is still a dependency. A break is reported as
`module:line imports target`, so the fix starts from the message.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "workers")
COMPOSER = "orchestrator.app"  # the one module that puts the API and the web UI together
MAX_LINES = 500
STDLIB = sys.stdlib_module_names


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (or, for `from m import name`, m.name when that is a module)
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:  # alembic scripts: loaded by path, not imported
                continue
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
            if submodules and len(submodules) == len(node.names):
                out += [Import(name, sub, node.lineno) for sub in submodules]
            else:
                out.append(Import(name, module, node.lineno))
    return out


IMPORTS = [imp for name, path in MODULES.items() for imp in _imports(name, path)]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _report(breaks: list[Import]) -> str:
    return "\n".join(
        f"{MODULES[b.source].relative_to(ROOT)}:{b.line} imports {b.target}" for b in breaks
    )


def test_r1_control_plane_never_imports_the_runtime_or_the_demo() -> None:
    breaks = [
        imp
        for imp in IMPORTS
        if (
            _within(imp.source, "orchestrator")
            and not _within(imp.source, "orchestrator.cli")
            and not _within(imp.source, "orchestrator.demo")
            and (_within(imp.target, "workers") or _within(imp.target, "orchestrator.demo"))
        )
        or (_within(imp.source, "orchestrator.demo") and _within(imp.target, "workers"))
        or (_within(imp.source, "workers") and _within(imp.target, "orchestrator.demo"))
    ]
    assert not breaks, "R1 broken:\n" + _report(breaks)


def _allowed_in_workflows(target: str) -> bool:
    top = target.split(".")[0]
    return (
        _within(target, "orchestrator.contracts")
        or _within(target, "workers.workflows")
        or top in ("temporalio", "pydantic", "__future__")
        or top in STDLIB
    )


def test_r2_workflows_import_only_contracts_temporalio_pydantic_and_stdlib() -> None:
    breaks = [
        imp
        for imp in IMPORTS
        if _within(imp.source, "workers.workflows") and not _allowed_in_workflows(imp.target)
    ]
    assert not breaks, "R2 broken:\n" + _report(breaks)


EDGES = ("orchestrator.api", "orchestrator.web", "orchestrator.cli")


def test_r3_only_the_edges_import_the_edges() -> None:
    breaks = [
        imp
        for imp in IMPORTS
        if any(_within(imp.target, edge) for edge in EDGES)
        and not any(_within(imp.source, edge) for edge in EDGES)
        and imp.source != COMPOSER
    ]
    breaks += [
        imp
        for imp in IMPORTS
        if _within(imp.source, "orchestrator.api") and _within(imp.target, "orchestrator.web")
    ]
    assert not breaks, "R3 broken:\n" + _report(breaks)


def test_r4_no_module_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"R4 broken (lines over {MAX_LINES}): {long}"


def _cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in IMPORTS:
        if imp.target in MODULES and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    # Tarjan's strongly connected components: any component with two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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


def test_r5_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, "R5 broken, modules importing each other: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_r6_demo_lives_in_one_folder() -> None:
    words = ("demo", "sample", "devstack")
    breaks = [
        str(path.relative_to(ROOT))
        for name, path in MODULES.items()
        if not _within(name, "orchestrator.demo") and any(w in part for part in name.split(".") for w in words)
    ]
    assert not breaks, f"R6 broken, demo code outside orchestrator/demo/: {breaks}"


# --- the checker itself can fail -----------------------------------------------------------------


def test_the_rules_see_lazy_imports_and_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted cycle through an import inside a function is found, and named."""
    pkg = tmp_path / "orchestrator"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from orchestrator import b\n")
    (pkg / "b.py").write_text("import orchestrator.a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    modules = {_module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    imports = [imp for name, path in modules.items() for imp in _imports(name, path)]
    monkeypatch.setattr(sys.modules[__name__], "IMPORTS", imports)
    assert Import("orchestrator.a", "orchestrator.b", 2) in imports
    assert _cycles() == [["orchestrator.a", "orchestrator.b"]]
