"""The app as ``sftp-s3-tui`` runs it (``App.run_async``, not the pilots' ``run_test``).

From Python 3.12 textual's run path turns on asyncio's eager task factory, which the pilots'
path does not: the demo's asyncssh server then never answered its password login."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sftp_s3_tui.ui.screens.browse import BrowseScreen
from tests.ui.helpers import browsing, demo_app


async def test_the_demo_logs_in_and_lists_when_run_as_the_command_runs_it(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    async def auto_pilot(pilot: Any) -> None:
        try:
            seen["factory"] = asyncio.get_running_loop().get_task_factory()
            await browsing(pilot)
            seen["screen"] = pilot.app.screen
        finally:
            pilot.app.exit()

    app = demo_app(tmp_path)
    await app.run_async(headless=True, size=(80, 24), auto_pilot=auto_pilot)
    assert seen["factory"] is None, "the engine's loop runs ordinary tasks"
    assert isinstance(seen.get("screen"), BrowseScreen), "logged in, both sides listed"
