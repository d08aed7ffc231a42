"""The layers point one way: config <- hardware <- training <- runs <- session <- ui <- cli.

Each package imports only the packages below it (imports inside functions included), so a newcomer can
read the code bottom-up and change a lower layer without the upper ones pulling on it. The domain and
the session load no Textual, and the app loads no torch before its first frame.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "tui_trainer"
LAYERS = ("config", "hardware", "training", "runs", "session", "ui", "cli")
TEXTUAL_FREE = LAYERS[:LAYERS.index("session") + 1]


def package_imports() -> dict[tuple[str, str], str]:
    """(importing package, imported package) -> the first place it happens, for every tui_trainer import."""
    edges: dict[tuple[str, str], str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue  # tui_trainer/__init__.py and __main__.py stand above every layer
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [_absolute(node, parts)]
            else:
                continue
            for name in names:
                dotted = name.split(".")
                if dotted[0] == "tui_trainer" and len(dotted) > 1 and dotted[1] != parts[0]:
                    edges.setdefault((parts[0], dotted[1]), f"{path.relative_to(ROOT)}:{node.lineno}")
    return edges


def _absolute(node: ast.ImportFrom, parts: tuple[str, ...]) -> str:
    """The module an ImportFrom names, with relative imports (`from .x import y`) made absolute."""
    if not node.level:
        return node.module or ""
    base = ["tui_trainer", *parts[:-1]][: len(parts) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def test_every_package_is_a_known_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS), "a new package needs its place in LAYERS (and the README's Architecture)"


def test_each_package_imports_only_the_layers_below_it():
    upward = [f"{where}: {a} imports {b}, a layer above it"
              for (a, b), where in sorted(package_imports().items()) if LAYERS.index(b) > LAYERS.index(a)]
    assert upward == []


def test_no_two_packages_import_each_other_even_through_others():
    graph: dict[str, set[str]] = {}
    edges = package_imports()
    for a, b in edges:
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = [f"{where}: {a} -> {b} closes a cycle" for (a, b), where in sorted(edges.items()) if reaches(b, a)]
    assert cycles == []


def loaded_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the heavy top-level modules it left in sys.modules."""
    probe = (f"{code}\nimport sys\n"
             "print(','.join(m for m in ('torch', 'sklearn', 'textual', 'rich') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_domain_and_session_modules_never_import_textual_or_rich():
    modules = sorted(".".join(("tui_trainer", *p.relative_to(PACKAGE).with_suffix("").parts))
                     for layer in TEXTUAL_FREE for p in (PACKAGE / layer).rglob("*.py"))
    code = "import importlib\n" + "".join(f"importlib.import_module({m.removesuffix('.__init__')!r})\n"
                                          for m in modules)
    heavy = loaded_after(code)
    assert "textual" not in heavy and "rich" not in heavy, heavy


def test_the_app_module_loads_neither_torch_nor_sklearn():
    assert loaded_after("import tui_trainer.ui.app") == ["textual", "rich"]
