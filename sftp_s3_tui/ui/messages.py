"""The app's own messages: screens post them, the App handles them with ``@on``.

Screens never import the App; they say what the user asked for and the App does it.
"""

from __future__ import annotations

from textual.message import Message

from ..engine.errors import TransferError
from ..profiles import Profile


class ConnectRequested(Message):
    """Log in with ``profile`` and browse (or, with ``test_only``, log in and disconnect)."""

    def __init__(self, profile: Profile, *, test_only: bool = False) -> None:
        super().__init__()
        self.profile = profile
        self.test_only = test_only


class DisconnectRequested(Message):
    """Back to the profiles, closing the session (the App asks first if transfers run)."""


class ErrorRaised(Message):
    """A user-facing error: ``modal`` stops what the user did (a dialog), else a notification."""

    def __init__(self, error: TransferError, *, modal: bool = False) -> None:
        super().__init__()
        self.error = error
        self.modal = modal
