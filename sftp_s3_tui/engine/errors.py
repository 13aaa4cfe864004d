"""User-facing errors: each failure has a one-line message and a hint, never a traceback."""

from __future__ import annotations


class TransferError(Exception):
    """Base of every error the engine reports to a user.

    ``title`` names the class of failure, ``message`` says what happened to what, ``hint``
    says what the user can do. ``retryable`` tells the retry loops whether trying again may help.
    """

    title = "Transfer failed"
    retryable = False

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

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
    ) -> None:
        super().__init__(message, hint)
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
