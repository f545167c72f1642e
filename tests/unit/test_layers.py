"""The folders are the layers (docs/architecture.md): no module imports from a layer above it.

The engine never imports web/; the one exception is `pvegit serve` (cli) starting web.app.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. A module may import from its own layer and any layer before it.
LAYERS = (
    ("errors", "textsafe", "layout"),
    ("system",),
    ("config",),
    ("node",),
    ("git",),
    ("content",),
    ("state",),
    ("actions",),
    ("service",),
    ("demo",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _imported(tree: ast.AST) -> list[str]:
    """Every pvegit module named by an import in the tree, lazy imports included."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name == "web" or name.startswith(("pvegit.", "web."))]


def upward_imports(package: Path) -> list[str]:
    """Each import in ``package`` (a pvegit tree) of a layer above the importing module's."""
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        layer = parts[0].removesuffix(".py")
        if layer not in RANK:  # __init__.py, __main__.py: the package's entry points
            continue
        for name in _imported(ast.parse(path.read_text(), str(path))):
            target = name.split(".")[1] if name.startswith("pvegit.") else "web"
            if (layer, name) == ("cli", "web.app"):  # `pvegit serve` starts the web face
                continue
            if target == "web" or RANK.get(target, -1) > RANK[layer]:
                found.append(f"{'/'.join(parts)} imports {name}")
    return found


def test_no_engine_module_imports_a_layer_above_it() -> None:
    assert upward_imports(ROOT / "pvegit") == []


def test_every_engine_folder_is_a_known_layer() -> None:
    folders = {path.name for path in (ROOT / "pvegit").iterdir() if (path / "__init__.py").exists()}
    modules = {path.stem for path in (ROOT / "pvegit").glob("*.py")} - {"__init__", "__main__"}
    assert folders | modules <= set(RANK), (folders | modules) - set(RANK)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "ssh.py").write_text(
        "from pvegit.config.host import Host\n"
        "def f():\n    from pvegit.state.store import Store\n    import web.app\n"
    )
    assert upward_imports(tmp_path) == [
        "node/ssh.py imports pvegit.state.store",
        "node/ssh.py imports web.app",
    ]
