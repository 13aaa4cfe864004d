"""Errors in the TUI's words: the setting an error is about is named as the form's field.

The engine's errors carry the setting (``error.setting``) rather than a CLI flag, so the TUI
names it from this table; nothing else in the message or hint is rewritten (a profile's
``env:SFTP_PASSWORD`` stays SFTP_PASSWORD)."""

from __future__ import annotations

from ..engine.errors import TransferError

#: Settings (keys of ``engine.errors.SETTINGS``) → the connect form's fields.
FORM_FIELDS: dict[str, str] = {
    "sftp_login": "the Password or Key file field",
    "identity": "Key file",
    "accept_new_host_key": "set Unknown host key to accept new keys",
    "endpoint_url": "Endpoint URL",
    "password_env": "the profile's Password field",
    "passphrase_env": "the profile's Key passphrase field",
    "secret_access_key_env": "the profile's Secret key field",
}


def for_the_tui(error: TransferError) -> TransferError:
    """The same error (same class) with its setting named as the form's field."""
    message, hint = error.worded(FORM_FIELDS)
    if (message, hint) == (error.message, error.hint):
        return error
    # not copy.copy: that calls the class with ``args`` alone, which HostKeyError refuses
    translated = error.__class__.__new__(error.__class__)
    translated.__dict__.update(error.__dict__)
    translated.args = (message,)
    translated.message, translated.hint = message, hint
    return translated
