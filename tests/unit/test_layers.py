"""The engine's folders are its layers: each module imports only its own level and those above.

Read from the code's own imports (every ``import`` and ``from … import``, lazy ones inside
functions included; those under ``if TYPE_CHECKING:`` are annotations and are not counted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import sftp_s3_tui.engine as engine_package

ENGINE = Path(engine_package.__file__).parent
LEVEL = {"sftp": 1, "s3": 1, "plan": 2, "resume": 2, "transfer": 3, "nightly": 4}
NEVER = {("sftp", "s3"), ("s3", "sftp")}


def _layer(module: str) -> str:
    """``sftp_s3_tui.engine.plan.sources`` → ``plan``; a level-0 module → ``""``."""
    parts = module.split(".")[2:]
    return parts[0] if len(parts) > 1 and parts[0] in LEVEL else ""


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def engine_imports(path: Path) -> set[str]:
    """The engine modules ``path`` imports at run time (relative imports resolved)."""
    module = ".".join(["sftp_s3_tui", *path.relative_to(ENGINE.parent).with_suffix("").parts])
    package = (
        module.rsplit(".", 1)[0] if path.name != "__init__.py" else module[: -len(".__init__")]
    )
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.update(f"{name}.{a.name}" for a in node.names)  # a name may be a module
            found.add(name)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {n for n in found if n.startswith("sftp_s3_tui.")}


def test_each_engine_module_imports_only_its_level_and_those_above() -> None:
    offences = []
    for path in sorted(ENGINE.rglob("*.py")):
        own = _layer(".".join(["sftp_s3_tui", *path.relative_to(ENGINE.parent).parts]))
        for name in sorted(engine_imports(path)):
            if not name.startswith("sftp_s3_tui.engine"):
                offences.append(f"{path.relative_to(ENGINE)} imports {name} (outside the engine)")
                continue
            theirs = _layer(name)
            if own == theirs or not theirs:
                continue
            if LEVEL[theirs] >= LEVEL.get(own, 0) or (own, theirs) in NEVER:
                offences.append(f"{path.relative_to(ENGINE)} imports {name}")
    assert offences == []


def test_package_files_hold_a_docstring_and_no_imports() -> None:
    for init in sorted(ENGINE.rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), init
        assert all(isinstance(n, ast.Expr) for n in tree.body), f"{init} does more than document"


def test_the_engine_imports_no_front() -> None:
    for path in sorted(ENGINE.rglob("*.py")):
        fronts = [n for n in engine_imports(path) if n.split(".")[1] in {"ui", "cli", "airflow"}]
        assert fronts == [], path
