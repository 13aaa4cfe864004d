"""Keys, palette, themes and the narrow layout, on the real app."""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandPalette

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.help import PANES, HelpScreen, key_groups
from sftp_s3_tui.ui.screens.transfers import TransfersScreen
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, screen_text, server_profile, wait_for


async def test_narrow_terminal_palette_help_and_theme(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    embedded_sftp.write_file("a.txt", b"a")
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint))
    async with app.run_test(size=(90, 30)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        browse = app.screen
        assert isinstance(browse, BrowseScreen)
        assert browse.has_class("-narrow")
        assert not browse.query_one(TransferPanel).display
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TransfersScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is browse)

        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        await pilot.press(*"show transfers")
        await wait_for(pilot, lambda: "Show transfers" in screen_text(app), what="the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TransfersScreen), what="palette")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is browse)

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        groups = dict(key_groups(browse))
        everywhere = [what for _, what, _ in groups["Everywhere"]]
        assert "Quit" in everywhere and "Help" in everywhere
        browse_keys = [what for _, what, _ in groups[PANES["BrowseScreen"]]]
        assert "Copy" in browse_keys and "Pause" in browse_keys
        sftp_keys = {what: more for _, what, more in groups[PANES["RemoteTree"]]}
        assert "select the files matching a glob" in sftp_keys["Select by glob"]
        assert "Filter" in sftp_keys
        await pilot.press("escape")

        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await app.close_all()


async def test_wide_terminal_shows_transfers_beside_browsing(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    embedded_sftp.write_file("a.txt", b"a")
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint))
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        panel = app.screen.query_one(TransferPanel)
        assert app.screen.has_class("-wide") and panel.display
        await pilot.press("t")  # focuses the queue instead of switching screens
        assert isinstance(app.screen, BrowseScreen)
        assert panel.transfer_list.has_focus
        await app.close_all()
