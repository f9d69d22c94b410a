"""The house rules (README.md "Development": the folder tree is the pipeline), checked on the source: no import circles, no import from a layer above.

Every ``import`` / ``from ... import`` of a ``vitmusic`` module anywhere in a file counts (module level, inside
functions, under ``TYPE_CHECKING``): a lazy import is still a dependency, and a circle hidden in a function is
still a circle. Layers, lowest first::

    base (errors, atomic, config, runs, plugins, the package itself) -> data -> encoders -> projection -> generators
    -> inference -> training -> evaluation -> workflow, listening -> commands, cli

A module may import its own layer and any layer below. ``metrics`` is apart: it imports only ``metrics`` and
``vitmusic.errors`` (the exception types the CLI reports), and anyone may import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vitmusic"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("vitmusic", "vitmusic.errors", "vitmusic.atomic", "vitmusic.config", "vitmusic.runs", "vitmusic.hf_quiet",
     "vitmusic.outputs", "vitmusic.plugins", "vitmusic.threads"),
    ("vitmusic.data",),
    ("vitmusic.encoders",),
    ("vitmusic.projection",),
    ("vitmusic.generators",),
    ("vitmusic.inference",),
    ("vitmusic.training",),
    ("vitmusic.evaluation",),
    ("vitmusic.workflow", "vitmusic.listening"),
    ("vitmusic.commands", "vitmusic.cli", "vitmusic.api"),
)
METRICS = "vitmusic.metrics"
METRICS_MAY_IMPORT = ("vitmusic.metrics", "vitmusic.errors")
MAX_LINES = 600


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` (module ``name``) imports, resolved to modules that exist."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import mod` imports the module pkg.mod when there is one, else names of pkg
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for target in targets:
            while target and target not in known:  # `import a.b.c` depends on the deepest module that exists
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    known = set(files)
    return {name: imports_of(path, name, known) for name, path in files.items()}


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` (the longest matching prefix), None for metrics."""
    if module == METRICS or module.startswith(METRICS + "."):
        return None
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # the package itself (its __init__) is the only module the bare "vitmusic" entry stands for
            inside = module == prefix or (prefix != "vitmusic" and module.startswith(prefix + "."))
            if inside and prefix.count(".") > depth:
                best, depth = i, prefix.count(".")
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, deps in sorted(graph.items()):
        mine = layer_of(module)
        for dep in sorted(deps):
            theirs = layer_of(dep)
            if mine is None:  # metrics: only metrics and the exception types
                if not any(dep == p or dep.startswith(p + ".") for p in METRICS_MAY_IMPORT):
                    bad.append(f"{module} -> {dep} (metrics depend on nothing of the project)")
            elif theirs is not None and theirs > mine:
                bad.append(f"{module} (layer {mine}) -> {dep} (layer {theirs})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    found = cycles(import_graph(PACKAGE))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_upward_imports():
    bad = upward_imports(import_graph(PACKAGE))
    assert not bad, "imports from a layer above:\n" + "\n".join(bad)


def test_files_stay_small():
    big = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in sorted(PACKAGE.rglob("*.py"))
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not big, f"files over {MAX_LINES} lines: " + ", ".join(big)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "vitmusic" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "vitmusic"


def test_checks_catch_a_circle_and_an_upward_import(tmp_path):
    """The checks fail on the faults they guard against (a lazy import counts, relative imports resolve)."""
    root = _write(tmp_path, {
        "__init__.py": "",
        "generators/__init__.py": "",
        "generators/a.py": "def f():\n    from vitmusic.generators import b\n",
        "generators/b.py": "from . import a\nfrom vitmusic.training.loop import train\n",
        "training/__init__.py": "",
        "training/loop.py": "import vitmusic.generators.b\n",
        "metrics/__init__.py": "",
        "metrics/tempo.py": "from vitmusic.data import audio\n",
        "data/__init__.py": "",
        "data/audio.py": "from vitmusic.errors import DataError\n",
        "errors.py": "",
    })
    graph = import_graph(root)
    assert graph["vitmusic.generators.a"] == {"vitmusic.generators.b"}
    assert graph["vitmusic.generators.b"] == {"vitmusic.generators.a", "vitmusic.training.loop"}
    assert cycles(graph) == [["vitmusic.generators.a", "vitmusic.generators.b", "vitmusic.training.loop"]]
    bad = upward_imports(graph)
    assert any(b.startswith("vitmusic.generators.b (layer 4) -> vitmusic.training.loop") for b in bad)
    assert any(b.startswith("vitmusic.metrics.tempo -> vitmusic.data.audio") for b in bad)
    assert not any("vitmusic.data.audio ->" in b for b in bad)


@pytest.mark.parametrize("module", ["vitmusic.something_new", "vitmusic.extras.x"])
def test_every_module_has_a_layer(module):
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer_of(module)
