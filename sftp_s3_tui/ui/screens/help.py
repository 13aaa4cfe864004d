"""The help screen, built from the bindings active where it was opened."""

from __future__ import annotations

from typing import Any, ClassVar

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


def _ours(node: object) -> set[tuple[str, str]]:
    """(action, description) of the bindings this app's own classes declare on ``node``."""
    found: set[tuple[str, str]] = set()
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("sftp_s3_tui"):
            continue
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding):
                found.add((binding.action, binding.description))
    return found


def bindings_table(screen: Screen[Any]) -> Table:
    """Key and description of this app's bindings active on ``screen`` (not the generic
    cursor keys of tables and inputs)."""
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    seen: set[str] = set()
    ours: dict[int, set[tuple[str, str]]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        node_ours = ours.setdefault(id(active.node), _ours(active.node))
        if (binding.action, binding.description) not in node_ours:
            continue
        if not binding.description or binding.description in seen:
            continue
        seen.add(binding.description)
        display = binding.key_display or screen.app.get_key_display(binding)
        table.add_row(display or key, binding.description)
    table.add_row("ctrl+p", "Command palette")
    table.add_row("tab", "Next pane")
    return table


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
            yield Static(Text("Keys here", style="bold"), classes="section")
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
