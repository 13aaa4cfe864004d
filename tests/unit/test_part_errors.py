"""Which error a failed file reports when several parts failed at once."""

from __future__ import annotations

from sftp_s3_tui.engine.errors import SftpReadError, SourceNotFound
from sftp_s3_tui.engine.transfer.parts import first_error


def test_a_definitive_answer_wins_over_a_dropped_connection_met_meanwhile() -> None:
    """One part met the cut ("Connection not open"), the other reopened the file and learnt
    it was deleted: the user is told the file is gone, whichever part failed first."""
    dropped = SftpReadError("Reading /in/a.bin failed: Connection not open", "")
    gone = SourceNotFound("/in/a.bin does not exist on the SFTP server", "check the path")
    for order in ([dropped, gone], [gone, dropped]):
        group = BaseExceptionGroup("parts", [ValueError("x"), *order])
        assert first_error(group) is gone


def test_without_a_definitive_answer_the_first_user_facing_error_is_reported() -> None:
    dropped = SftpReadError("Reading /in/a.bin failed: Connection not open", "")
    group = BaseExceptionGroup("parts", [RuntimeError("internal"), dropped])
    assert first_error(group) is dropped
