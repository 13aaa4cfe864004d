"""The unknown / changed host key dialog."""

from __future__ import annotations

from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...engine.errors import HostKeyError
from .dialogs import ARROW_FOCUS

HostKeyChoice = Literal["once", "always", "refuse"]


class HostKeyScreen(ModalScreen[HostKeyChoice]):
    """Show a host key's fingerprint: trust it once, always, or refuse.

    A changed key (known_hosts has other keys for the host) can only be refused.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('refuse')", "Refuse"),
        Binding("o", "choose('once')", "Trust once", show=False),
        Binding("a", "choose('always')", "Trust always", show=False),
        *ARROW_FOCUS,
    ]

    def __init__(self, error: HostKeyError) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        error = self.error
        where = f"{error.host}:{error.port}"
        with Vertical(classes="dialog" + (" danger" if error.changed else "")):
            if error.changed:
                yield Static(Text("⚠ HOST KEY CHANGED", style="bold red"), classes="title")
                body = Text()
                body.append(f"The server at {where} shows a different key than before.\n\n")
                body.append("server now  ", "bold")
                body.append(f"{error.fingerprint}\n")
                for known in error.known_fingerprints:
                    body.append("known_hosts ", "bold")
                    body.append(f"{known}\n")
                body.append(
                    "\nThis may be an attack (or the server was re-installed). The connection "
                    "was refused. If the change is expected, remove the old line from your "
                    "known_hosts file and connect again.",
                    style="italic",
                )
                yield Static(body)
                with Horizontal(classes="buttons"):
                    yield Button("Close", variant="error", id="refuse")
            else:
                yield Static(Text("Unknown host key", style="bold"), classes="title")
                body = Text()
                body.append(f"{where} is not in your known_hosts file. Its key is\n\n")
                body.append(f"  {error.fingerprint}\n\n", style="bold yellow")
                body.append(
                    "Compare it with the fingerprint the server's administrator gave you "
                    "before trusting it.\n",
                    style="italic",
                )
                body.append("o trust once · a trust always (known_hosts) · esc refuse", "dim")
                yield Static(body)
                with Horizontal(classes="buttons"):
                    yield Button("Trust once", variant="primary", id="once")
                    yield Button("Trust always", variant="success", id="always")
                    yield Button("Refuse", variant="error", id="refuse")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id or "refuse")

    def action_choose(self, choice: str) -> None:
        if self.error.changed and choice != "refuse":
            return
        self.dismiss(choice)  # type: ignore[arg-type]
