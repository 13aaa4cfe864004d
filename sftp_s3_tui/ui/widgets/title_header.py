"""Textual's Header, minus its teardown race."""

from __future__ import annotations

from contextlib import suppress

from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.events import Mount
from textual.widget import Widget
from textual.widgets import Header
from textual.widgets._header import HeaderTitle


class TitleHeader(Header):
    """The app's header: a title change that arrives while the screen is being torn down
    is dropped instead of raising.

    Textual's own Header watches the app's and the screen's titles and, when one changes,
    queries its ``HeaderTitle`` child; a change that lands after the children are removed
    (quitting or closing a screen right after a login renamed the title) raised
    ``NoMatches`` and crashed the app on its way out.
    """

    def _on_mount(self, event: Mount) -> None:
        event.prevent_default()  # replaces Header._on_mount, which registers unguarded watchers
        Widget._on_mount(self, event)

        async def set_title() -> None:
            # the header is being removed: nothing to show the title on
            with suppress(NoMatches, NoScreen):
                self.query_one(HeaderTitle).update(self.format_title())

        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(self.screen, "title", set_title)
        self.watch(self.screen, "sub_title", set_title)
