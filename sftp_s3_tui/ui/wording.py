"""Errors in the TUI's words: hints name the form's fields, not the CLI's flags or env vars."""

from __future__ import annotations

from ..engine.errors import TransferError

#: CLI wording → the connect form's field names (longest first, so they replace cleanly).
_TUI_WORDS = (
    ("(and SFTP_PASSWORD / --identity)", "(the Password or Key file field)"),
    ("check --identity and the key's passphrase", "check Key file and Key passphrase"),
    ("--accept-new-host-key", "Unknown host key: accept new keys"),
    ("--endpoint-url", "Endpoint URL"),
    ("--aws-profile", "AWS profile"),
    ("--known-hosts", "known_hosts"),
    ("--identity", "Key file"),
    ("--region", "Region"),
    ("--user", "User"),
    ("--port", "Port"),
    ("SFTP_PASSWORD", "Password"),
)


def in_tui_words(text: str) -> str:
    """``text`` with CLI flags and env variables named as the form's fields."""
    for cli, tui in _TUI_WORDS:
        text = text.replace(cli, tui)
    return text


def for_the_tui(error: TransferError) -> TransferError:
    """The same error (same class) with its message and hint in the TUI's words."""
    message, hint = in_tui_words(error.message), in_tui_words(error.hint)
    if (message, hint) == (error.message, error.hint):
        return error
    translated = error.__class__.__new__(error.__class__)
    translated.__dict__.update(error.__dict__)
    TransferError.__init__(translated, message, hint)
    return translated
