"""The help screen, built from the bindings active where it was opened."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from ..widgets.chunk_map import legend

INTRO = (
    "Pick files on the SFTP side (space selects, enter opens a folder), choose a bucket and "
    "prefix on the S3 side (or type bucket/prefix/), then press c. Files stream straight from "
    "SFTP into S3 multipart uploads: nothing is written to disk, memory stays within the "
    "budget, every part is checksummed and the object is verified at the end. Interrupted "
    "uploads resume where they stopped the next time you connect."
)


#: ``?`` first in a screen's footer: the app's own binding comes last there and a narrow
#: terminal (80 columns) cut it off. Listed once in the help, under Everywhere.
HELP_KEY = Binding(
    "question_mark",
    "app.help",
    "Help",
    key_display="?",
    tooltip="these keys, grouped by where they work",
)

#: Where each part of the app is, for the help's headings (by class name; a class may set
#: ``HELP_PANE`` instead). The app's own keys come first: they work everywhere.
PANES: dict[str, str] = {
    "SftpS3App": "Everywhere",
    "ConnectScreen": "Connect screen (profiles and the connection form)",
    "BrowseScreen": "Browse screen (SFTP files on the left, S3 on the right)",
    "TransfersScreen": "Transfers screen",
    "RemoteTree": "SFTP list (left pane)",
    "FilterInput": "SFTP filter box (/ in the SFTP list)",
    "BucketPicker": "S3 side (right pane)",
    "TransferList": "Transfer queue (t)",
}
#: Keys that are not bindings of ours but are worth knowing, per pane.
EXTRA_KEYS: dict[str, list[tuple[str, str, str]]] = {
    "SftpS3App": [
        ("ctrl+p", "Command palette", "every command by name, with its key"),
        ("tab", "Next pane", "shift+tab goes back"),
    ],
    "RemoteTree": [
        ("enter", "Open", "open the folder under the cursor"),
        ("home / end", "First / last", "the first or last entry"),
    ],
}


def _own_bindings(node: object) -> list[Binding]:
    """The bindings this app's own classes declare on ``node`` (not Textual's generic cursor
    keys), the class's own first."""
    found: list[Binding] = []
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("sftp_s3_tui"):
            continue
        found += [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
    return found


def _pane(node: object) -> str:
    return getattr(node, "HELP_PANE", None) or PANES.get(type(node).__name__, "")


def key_groups(screen: Screen[Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(where, [(key, what, more)]) for the app, the screen and each pane of it that has keys
    of its own: built from the bindings, so it cannot drift from what the keys do."""
    app = screen.app
    nodes: list[object] = [app, screen, *screen.walk_children()]
    groups: list[tuple[str, list[tuple[str, str, str]]]] = []
    seen_panes: set[str] = set()
    for node in nodes:
        where = _pane(node)
        if not where or where in seen_panes:
            continue
        rows: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for binding in _own_bindings(node):
            if not binding.description or binding.description in seen:
                continue
            if binding.action == HELP_KEY.action:  # the app's own ? says it once
                continue
            seen.add(binding.description)
            display = binding.key_display or app.get_key_display(binding)
            rows.append((display or binding.key, binding.description, binding.tooltip))
        rows += EXTRA_KEYS.get(type(node).__name__, [])
        if rows:
            seen_panes.add(where)
            groups.append((where, rows))
    return groups


def bindings_table(screen: Screen[Any]) -> Group:
    """The keys of ``screen``, grouped by where they work: a heading per pane, then each key,
    what it does and, dimmed, more about it."""
    parts: list[Text | Table] = []
    for index, (where, rows) in enumerate(key_groups(screen)):
        parts.append(Text(("\n" if index else "") + where, style="bold underline"))
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 1))
        table.add_column(style="bold cyan", no_wrap=True, min_width=8)
        table.add_column(no_wrap=True, min_width=14)
        table.add_column(style="dim")
        for key, what, more in rows:
            table.add_row(key, what, more)
        parts.append(table)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """Keys of the screen below, the chunk map legend and a word on what happens."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "Close help")
    ]

    def __init__(self, below: Screen[object]) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("sftp-s3-tui — help", style="bold"), classes="title")
            yield Static(INTRO, classes="help-intro")
            yield Static(Text("Keys, by where they work", style="bold"), classes="section")
            yield Static(bindings_table(self.below))
            yield Static(Text("Chunk map", style="bold"), classes="section")
            yield Static(legend())
            yield Static(
                Text(
                    "Mouse: click rows, buttons and tree nodes; scroll lists. "
                    "ctrl+p opens the command palette. Esc closes this help.",
                    style="dim",
                ),
                classes="section",
            )
