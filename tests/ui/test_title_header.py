"""The header survives a title change that lands while its screen is torn down."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Header

from sftp_s3_tui.ui.widgets.title_header import TitleHeader


class _Titled(Screen[None]):
    def __init__(self, header: type[Header]) -> None:
        super().__init__()
        self._header = header

    def compose(self) -> ComposeResult:
        yield self._header()


class _RenamesWhileClosing(App[None]):
    """Pops its screen and, in the same turn, renames itself: what a login finishing as the
    user quits does."""

    def __init__(self, header: type[Header]) -> None:
        super().__init__()
        self._header = header

    def on_mount(self) -> None:
        self.push_screen(_Titled(self._header))


async def test_a_title_change_during_teardown_does_not_crash_the_app() -> None:
    # Textual's own Header raises NoMatches here (checked with textual 8.2)
    header = TitleHeader
    app = _RenamesWhileClosing(header)
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one(header).is_mounted
        for child in list(screen.query_one(header).children):
            await child.remove()  # the header's children go first, as in a teardown
        app.title = "connected"  # ... and a title change arrives after them
        screen.sub_title = "renamed"
        await pilot.pause()
        await app.pop_screen()
    assert app.return_code in (None, 0)
