"""The UI's layering: screens and the command palette talk to the App by messages only."""

from __future__ import annotations

import ast
from pathlib import Path

import sftp_s3_tui.ui as ui_package

UI = Path(ui_package.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative imports resolved)."""
    package = ".".join(["sftp_s3_tui", *path.relative_to(UI.parent).parts[:-1]])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_screens_and_commands_do_not_import_the_app() -> None:
    modules = [*sorted((UI / "screens").glob("*.py")), UI / "commands.py", UI / "messages.py"]
    offenders = {
        str(path.relative_to(UI)): sorted(n for n in _imports(path) if n == "sftp_s3_tui.ui.app")
        for path in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_session_and_engine_import_no_textual() -> None:
    textual_free = [UI / "session.py", UI / "watches.py", UI / "wording.py"]
    for path in [*textual_free, *sorted((UI.parent / "engine").rglob("*.py"))]:
        textual = sorted(n for n in _imports(path) if n.startswith("textual"))
        assert textual == [], path
    for path in sorted((UI.parent / "engine").rglob("*.py")):
        ui = sorted(n for n in _imports(path) if n.startswith("sftp_s3_tui.ui"))
        assert ui == [], path
