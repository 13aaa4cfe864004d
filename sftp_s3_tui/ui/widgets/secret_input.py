"""An Input for secrets whose messages never show what was typed.

With ``TEXTUAL_LOG`` set, Textual writes every message a widget handles to that file as
``str(message)``: an Input's ``Changed`` / ``Submitted`` / ``Blurred`` carry its value, and each
``Key`` its character, so a password typed into a plain ``Input(password=True)`` lands in the log
once per keystroke. :class:`SecretInput` posts the same messages (same handler names, so
``@on(Input.Changed)`` still matches) whose text says ``<hidden>`` instead, and hides the
character of every key and the text of every paste it receives.
"""

from __future__ import annotations

from typing import Any

from rich.repr import Result
from textual import events
from textual.message import Message
from textual.widgets import Input

HIDDEN = "<hidden>"


def _hidden_repr(message: Message) -> str:
    input_id = getattr(getattr(message, "input", None), "id", None)
    return f"{type(message).__qualname__}(input={input_id!r}, value={HIDDEN})"


class _QuietKey(events.Key):
    """A key whose printed form leaves its character out (same slots: swapped in place)."""

    __slots__ = ()

    def __rich_repr__(self) -> Result:
        yield "key", self.key if not self.is_printable else HIDDEN

    def __repr__(self) -> str:
        return f"Key(key={self.key!r})" if not self.is_printable else f"Key(key={HIDDEN})"

    __str__ = __repr__


class _QuietPaste(events.Paste):
    def __rich_repr__(self) -> Result:
        yield "text", HIDDEN

    def __repr__(self) -> str:
        return f"Paste(text={HIDDEN})"

    __str__ = __repr__


# Dispatch goes by ``handler_name``: the quiet ones reach the same handlers as the originals.
_QuietKey.handler_name = events.Key.handler_name
_QuietPaste.handler_name = events.Paste.handler_name


class SecretInput(Input):
    """``Input(password=True)`` whose log lines, messages and reprs never hold the value."""

    class Changed(Input.Changed, namespace="input"):
        def __repr__(self) -> str:
            return _hidden_repr(self)

        __str__ = __repr__

        def __rich_repr__(self) -> Result:
            yield "value", HIDDEN

    class Submitted(Input.Submitted, namespace="input"):
        def __repr__(self) -> str:
            return _hidden_repr(self)

        __str__ = __repr__

        def __rich_repr__(self) -> Result:
            yield "value", HIDDEN

    class Blurred(Input.Blurred, namespace="input"):
        def __repr__(self) -> str:
            return _hidden_repr(self)

        __str__ = __repr__

        def __rich_repr__(self) -> Result:
            yield "value", HIDDEN

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["password"] = True
        super().__init__(*args, **kwargs)

    def _forward_event(self, event: events.Event) -> None:
        """Keys and pastes arrive here before this widget handles (and logs) them."""
        if type(event) is events.Key:
            event.__class__ = _QuietKey
        elif type(event) is events.Paste:
            event.__class__ = _QuietPaste
        super()._forward_event(event)

    def post_message(self, message: Message) -> bool:
        # Input posts its messages as ``self.Changed(...)`` (ours), except Blurred on some
        # paths; any plain Input message about this widget is swapped for the quiet one.
        for plain, quiet in (
            (Input.Changed, SecretInput.Changed),
            (Input.Submitted, SecretInput.Submitted),
            (Input.Blurred, SecretInput.Blurred),
        ):
            if type(message) is plain:
                message.__class__ = quiet
                break
        return super().post_message(message)
