"""Small modal dialogs: an error with its hint, a yes/no question, a name prompt."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

#: Arrow keys move between a dialog's buttons and fields (Tab does too). A focused widget
#: that uses an arrow itself (a table, a radio set, an input's left / right) keeps it.
ARROW_FOCUS: list[BindingType] = [
    Binding("left,up", "app.focus_previous", "Previous", show=False),
    Binding("right,down", "app.focus_next", "Next", show=False),
]


class ErrorScreen(ModalScreen[None]):
    """A failure as the user should read it: title, what happened, what to do."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "dismiss", "Close"),
        *ARROW_FOCUS,
    ]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__()
        self.error_title = title
        self.message = message
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog danger"):
            yield Static(Text(self.error_title, style="bold red"), classes="title")
            yield Static(self.message, id="error-message")
            if self.hint:
                yield Static(Text.assemble(("Hint: ", "bold"), self.hint), id="error-hint")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
        *ARROW_FOCUS,
    ]

    def __init__(
        self,
        title: str,
        body: str | Text,
        yes: str = "Yes",
        no: str = "No",
        *,
        safe_is_no: bool = False,
    ) -> None:
        """``safe_is_no``: "yes" destroys something, so "no" has the focus and the colour."""
        super().__init__()
        self.question = title
        self.body = body
        self.yes = yes
        self.no = no
        self.safe_is_no = safe_is_no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question, style="bold"), classes="title")
            yield Static(self.body)
            with Horizontal(classes="buttons"):
                if self.safe_is_no:
                    yield Button(self.yes, variant="error", id="yes")
                    yield Button(self.no, variant="primary", id="no")
                else:
                    yield Button(self.yes, variant="primary", id="yes")
                    yield Button(self.no, id="no")

    def on_mount(self) -> None:
        self.query_one("#no" if self.safe_is_no else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a new profile name)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"), *ARROW_FOCUS]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question, style="bold"), classes="title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.dismiss(self.query_one(Input).value.strip() or None)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
