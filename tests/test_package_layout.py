"""The package layout the design promises, checked on the source: lingshu/data has no import
cycle and its format modules never import the registry; nothing outside lingshu/tasks/ decides
by comparing a task or decoder name."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lingshu"
NAMES = {"ner", "re", "pair", "softmax", "crf", "globalpointer", "span-type-pattern", "gplinker", "cls"}


def _imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that `path` imports anywhere (module level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == package:  # from lingshu.data import cmeie, ...
                out |= {f"{package}.{a.name}" for a in node.names}
            elif node.module.startswith(package + "."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith(package + ".")}
    return out


def test_data_has_no_import_cycle_and_formats_do_not_import_the_registry():
    mods = {f"lingshu.data.{p.stem}": p for p in (PKG / "data").glob("*.py") if p.stem != "__init__"}
    graph = {m: {i for i in _imports(p, "lingshu.data") if i in mods} for m, p in mods.items()}
    formats = {"cluener", "cmeee", "spans", "conll", "plain", "cmeie", "pairs"}
    for f in formats:
        assert "lingshu.data.registry" not in graph[f"lingshu.data.{f}"], f
        assert graph[f"lingshu.data.{f}"] <= {"lingshu.data.base"}, (f, graph[f"lingshu.data.{f}"])
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, "import cycle: " + " -> ".join(path + [n])
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_no_task_or_decoder_name_comparison_outside_tasks():
    found = []
    for path in PKG.rglob("*.py"):
        if "tasks" in path.relative_to(PKG).parts:
            continue
        src = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(src)):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            consts = {p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)}
            for p in parts:
                if isinstance(p, (ast.Tuple, ast.List, ast.Set)):
                    consts |= {e.value for e in p.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            text = ast.get_source_segment(src, node) or ""
            if consts & NAMES and ("task" in text or "decoder" in text):
                found.append(f"{path.relative_to(PKG)}:{node.lineno}: {text}")
    assert not found, "\n".join(found)
