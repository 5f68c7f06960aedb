"""The package's shape: one chapter list, no import cycle (but the grading plugin registry's),
no chapter importing another, nothing in viz/ importing up into chapters/, and no private
name (``_x``) imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import ganlab
from ganlab import book, chapters

ROOT = Path(ganlab.__file__).resolve().parent
# the grading registry imports the check modules, which register themselves in it
ALLOWED_CYCLE = {
    "ganlab.grading.registry",
    "ganlab.grading.checks",
    *(f"ganlab.grading.checks.{p.stem}" for p in (ROOT / "grading" / "checks").glob("*.py")),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported module, imported names)], every import statement, lazy ones too."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    found = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rows = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                rows += [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                rows.append((base, [a.name for a in node.names]))
        found[name] = rows
    return found


def graph() -> dict[str, set[str]]:
    found = imports()
    edges = {m: set() for m in found}
    for m, rows in found.items():
        for target, names in rows:
            for t in [target] + [f"{target}.{n}" for n in names]:
                while t and t not in found:
                    t = t.rpartition(".")[0]
                if t and t != m:
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle_but_the_grading_registry():
    found = cycles(graph())
    assert all(c <= ALLOWED_CYCLE for c in found), found


def test_no_chapter_imports_another_and_viz_never_imports_chapters():
    chapter_modules = {c.module for c in chapters.PLAN if c.module}
    edges = graph()
    for m in chapter_modules:
        others = edges[m] & (chapter_modules - {m})
        assert not others, f"{m} imports the chapter(s) {others}"
    for m, targets in edges.items():
        if m.startswith("ganlab.viz"):
            up = {t for t in targets if t.startswith("ganlab.chapters")}
            assert not up, f"{m} imports {up}: viz draws, chapters wire"


def test_no_private_name_is_imported_from_another_module():
    bad = [
        (m, target, n)
        for m, rows in imports().items()
        for target, names in rows
        if target.startswith("ganlab")
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not bad, bad


def test_one_chapter_list():
    assert ganlab.CHAPTERS == chapters.CHAPTERS == tuple(c.name for c in chapters.PLAN)
    assert [c.number for c in chapters.PLAN] == list(range(1, 9))
    assert book.CHAPTERS == {c.number: (c.title, c.world, c.payoff) for c in chapters.PLAN}
    for entry in chapters.PLAN:
        if entry.module:
            assert chapters.get_chapter(entry.name).name == entry.name
