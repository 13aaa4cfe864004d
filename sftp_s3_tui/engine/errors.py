"""User-facing errors: each failure has a one-line message and a hint, never a traceback."""

from __future__ import annotations

from collections.abc import Mapping

#: The settings an error can be about, named in words no front owns. An error about one
#: carries ``setting`` and writes ``{setting}`` where its name goes; each front names it its
#: own way (the CLI as a flag, the TUI as a form field) through :meth:`TransferError.worded`,
#: so no front rewrites another's wording (and a user's own words, such as the name of an
#: environment variable, are never touched).
SETTINGS: dict[str, str] = {
    "sftp_login": "the login settings",
    "identity": "the key file",
    "accept_new_host_key": "accept the new host key",
    "endpoint_url": "the endpoint URL",
    "password_env": "the profile's SFTP password",
    "passphrase_env": "the profile's key passphrase",
    "secret_access_key_env": "the profile's S3 secret key",
}


class TransferError(Exception):
    """Base of every error the engine reports to a user.

    ``title`` names the class of failure, ``message`` says what happened to what, ``hint``
    says what the user can do. ``retryable`` tells the retry loops whether trying again may help.
    ``setting`` names the setting (a key of :data:`SETTINGS`) that ``{setting}`` in the
    message and hint stands for; ``message`` and ``hint`` hold it in the neutral words.
    """

    title = "Transfer failed"
    retryable = False

    def __init__(self, message: str, hint: str = "", *, setting: str | None = None) -> None:
        self.setting = setting
        self._message, self._hint = message, hint  # with ``{setting}`` where it is named
        super().__init__(self.message)

    # ``message`` and ``hint`` read in the neutral words; assigning one (e.g. to add where the
    # error happened) keeps the setting's place, so each front can still name it its own way.
    @property
    def message(self) -> str:
        return self.worded({})[0]

    @message.setter
    def message(self, value: str) -> None:
        self._message = value

    @property
    def hint(self) -> str:
        return self.worded({})[1]

    @hint.setter
    def hint(self, value: str) -> None:
        self._hint = value

    def worded(self, names: Mapping[str, str]) -> tuple[str, str]:
        """The message and the hint with the setting named as a front calls it (``names``:
        setting → the front's name; the neutral words where it has none)."""
        message, hint = self._message, self._hint
        if self.setting is None:
            return message, hint
        name = names.get(self.setting) or SETTINGS.get(self.setting, self.setting)
        return message.replace("{setting}", name), hint.replace("{setting}", name)

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(TransferError):
    """The user's input (an address, a size, an option) is not valid."""

    title = "Invalid input"


class ConfigError(TransferError):
    """A configuration or profile file cannot be used."""

    title = "Configuration problem"


class SftpConnectError(TransferError):
    """The SSH connection could not be opened or authenticated."""

    title = "SFTP connection failed"
    retryable = True


class SftpAuthError(SftpConnectError):
    """The server refused every offered credential."""

    title = "SFTP login refused"
    retryable = False


class HostKeyError(SftpConnectError):
    """The server's host key is unknown or differs from known_hosts."""

    title = "Host key not trusted"
    retryable = False

    def __init__(
        self,
        message: str,
        hint: str,
        *,
        host: str,
        port: int,
        fingerprint: str,
        known_fingerprints: tuple[str, ...] = (),
        key_line: str = "",
        setting: str | None = None,
    ) -> None:
        super().__init__(message, hint, setting=setting)
        self.host = host
        self.port = port
        self.fingerprint = fingerprint
        self.known_fingerprints = known_fingerprints
        self.key_line = key_line

    @property
    def changed(self) -> bool:
        """True when known_hosts holds other keys for this host (a possible attack)."""
        return bool(self.known_fingerprints)


class SftpReadError(TransferError):
    """Reading from the SFTP server failed (after retries where retrying made sense)."""

    title = "SFTP read failed"
    retryable = True


class SourceNotFound(TransferError):
    """The remote path does not exist."""

    title = "Source not found"


class SourcePermissionDenied(TransferError):
    """The SFTP user may not read the remote path."""

    title = "Permission denied"


class SourceChanged(TransferError):
    """The source file changed (size or mtime) while it was being read."""

    title = "Source changed during transfer"


class S3Error(TransferError):
    """An S3 request failed after retries."""

    title = "S3 request failed"
    retryable = True
    code = ""  # S3's error code (e.g. BadDigest), '' for transport errors


class BucketNotFound(S3Error):
    """The destination bucket does not exist."""

    title = "Bucket not found"
    retryable = False


class S3AccessDenied(S3Error):
    """The S3 credentials are missing, wrong, expired or lack the right."""

    title = "S3 access denied"
    retryable = False


class VerificationFailed(TransferError):
    """The object S3 holds does not match what was read from the source."""

    title = "Verification failed"


class SourceReadFailed(TransferError):
    """The SFTP server answered a read of this file with an error (e.g. EIO).

    The file's own failure: the connection stays up for the other files, and it is not
    retried as a dropped connection.
    """

    title = "SFTP server error"


class SourceUnsupported(TransferError):
    """The source is not something that can be copied safely: not a regular file (a FIFO,
    a device, a socket, a link to one) or a file the server reports no size for."""

    title = "Not a regular file"


class JournalWriteFailed(TransferError):
    """The resume journal could not be written (disk full, read-only, a folder in the way)."""

    title = "Journal write failed"


class StoreChecksumWrong(VerificationFailed):
    """The store's checksum of the object disagrees with its bytes (its ETag, the MD5 of the
    bytes, matches): the store computes that algorithm differently."""

    title = "Store checksum disagrees"


class ManifestWriteFailed(TransferError):
    """A manifest row could not be made durable (disk full, EIO, a folder in the way): the
    file it records keeps its source, and the run fails."""

    title = "Manifest write failed"


class WatchStateBusy(TransferError):
    """Another watch holds the lock of this watch's state: two would ship every file twice."""

    title = "Watch already running"


class WatchStateUnreadable(TransferError):
    """The watch's state file is not one (binary data, a folder, a line that is not a row):
    it is left as it is for the user to look at, never overwritten."""

    title = "Watch state unreadable"


class DestinationRefused(TransferError):
    """The SFTP destination refused a write, a folder or a rename (rights, a full disk, a
    server that forbids rename): the file is not delivered and no temporary file is left."""

    title = "Destination refused"


class DestinationWriteFailed(TransferError):
    """The SSH connection to the destination dropped (or stalled) while a file was written."""

    title = "SFTP write failed"
    retryable = True


class UnsafeKey(TransferError):
    """An S3 key that cannot become a path under the target folder (``..``, a leading
    ``/``, a control character): refused by name, never written anywhere."""

    title = "Key refused"
