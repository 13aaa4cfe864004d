"""The resume journal itself: records keyed by store + bucket + key, locked, never overwritten,
and one clear error when its folder cannot be used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sftp_s3_tui.engine.resume.journal import (
    Journal,
    JournalBusy,
    JournalError,
    JournalWriter,
    account_identity,
    endpoint_identity,
)

MINIO = "http://minio.example:9000"


def record(journal: Journal, endpoint: str, upload_id: str, key: str = "k/big.bin") -> None:
    with journal.for_endpoint(endpoint).claim("landing", key) as claim:
        writer = claim.start(
            claim.new_entry("sftp://h/in/big.bin", upload_id, 5 << 20, 11 << 20, 7)
        )
        writer.part_done(1, '"etag-1"', "crc1")
        writer.close()


def test_endpoint_identity_names_the_store_not_the_url_spelling() -> None:
    assert endpoint_identity(None) == "aws"
    assert endpoint_identity("https://s3.eu-west-1.amazonaws.com") == "aws"
    assert endpoint_identity("https://bucket.s3.amazonaws.com/") == "aws"
    assert endpoint_identity("HTTP://MinIO.example:9000/") == MINIO
    assert endpoint_identity("https://r2.example:443") == "https://r2.example"
    assert endpoint_identity("localhost:9000") == "https://localhost:9000"
    assert account_identity("AKIAEXAMPLE").startswith("key:")
    assert "AKIAEXAMPLE" not in account_identity("AKIAEXAMPLE")
    assert account_identity(profile="minio") == "profile:minio"


def test_the_same_bucket_and_key_on_two_endpoints_keep_two_records(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    record(journal, "aws", "upload-on-aws")
    record(journal, MINIO, "upload-on-minio")

    assert {e.upload_id for e in journal.entries()} == {"upload-on-aws", "upload-on-minio"}
    [on_minio] = journal.resumable(MINIO)
    assert on_minio.upload_id == "upload-on-minio" and on_minio.parts == {1: ('"etag-1"', "crc1")}
    assert [e.upload_id for e in journal.resumable("aws")] == ["upload-on-aws"]
    with journal.for_endpoint(MINIO).claim("landing", "k/big.bin") as claim:
        assert claim.entry is not None and claim.entry.upload_id == "upload-on-minio"


def test_a_second_run_cannot_claim_a_key_that_a_running_one_holds(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    journal = Journal(folder)
    other_run = textwrap.dedent(
        f"""
        from pathlib import Path
        from sftp_s3_tui.engine.resume.journal import Journal, JournalBusy
        try:
            records = Journal(Path({str(folder)!r})).for_endpoint("aws")
            records.claim("landing", "k/big.bin").release()
        except JournalBusy as exc:
            print(exc)
        else:
            print("claimed")
        """
    )
    with journal.for_endpoint("aws").claim("landing", "k/big.bin"):
        busy = subprocess.run([sys.executable, "-c", other_run], capture_output=True, text=True)
        with pytest.raises(JournalBusy):  # in the same process too (a second queue)
            journal.for_endpoint("aws").claim("landing", "k/big.bin")
        # another key, or the same key on another store, is free
        journal.for_endpoint("aws").claim("landing", "k/other.bin").release()
        journal.for_endpoint(MINIO).claim("landing", "k/big.bin").release()
    after = subprocess.run([sys.executable, "-c", other_run], capture_output=True, text=True)

    assert busy.stdout.startswith("s3://landing/k/big.bin is being uploaded by another run (")
    assert "pid" in busy.stdout and busy.stderr == ""
    assert after.stdout.strip() == "claimed"
    assert list(folder.glob("*.lock")) == []  # released locks leave no files behind


def test_a_new_upload_never_overwrites_the_record_of_one_still_open(tmp_path: Path) -> None:
    """The source changed and aborting the old upload failed: the new upload's record must not
    replace the old one, or nothing would know the old upload is still open."""
    journal = Journal(tmp_path / "journal")
    record(journal, "aws", "old-upload")
    record(journal, "aws", "new-upload")  # the old one was neither forgotten nor aborted

    entries = {e.upload_id: e for e in journal.entries("aws")}
    assert set(entries) == {"old-upload", "new-upload"}
    assert entries["old-upload"].kept and not entries["new-upload"].kept
    assert [e.upload_id for e in journal.resumable("aws")] == ["new-upload"]

    journal.forget(entries["old-upload"])  # what cleanup does once it aborted the upload
    assert [e.upload_id for e in journal.entries()] == ["new-upload"]


def test_forget_refuses_while_a_run_holds_the_key(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    record(journal, "aws", "u1")
    [entry] = journal.entries()
    with journal.for_endpoint("aws").claim("landing", "k/big.bin"), pytest.raises(JournalBusy):
        journal.forget(entry)
    journal.forget(entry)
    assert journal.entries() == []


def test_a_file_where_the_journal_folder_should_be_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "journal").write_text("not a folder")
    journal = Journal(tmp_path / "journal")
    with pytest.raises(JournalError) as caught:
        journal.for_endpoint("aws").claim("landing", "k/big.bin")
    message = str(caught.value)
    assert message.startswith("The resume journal cannot create ")
    assert "--no-resume" in message and "\n" not in message


def test_a_folder_in_the_way_of_a_record_is_one_clear_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    with journal.for_endpoint("aws").claim("landing", "k/big.bin") as claim:
        claim.path.mkdir(parents=True)
        with pytest.raises(JournalError) as writing:
            claim.start(claim.new_entry("sftp://h/x", "u1", 5 << 20, 11 << 20, 7))
    with pytest.raises(JournalError) as reading:
        journal.for_endpoint("aws").claim("landing", "k/big.bin")
    assert str(writing.value).startswith("The resume journal cannot write ")
    assert str(reading.value).startswith("The resume journal cannot read ")
    assert "Is a directory" in str(reading.value)
    assert list((tmp_path / "journal").glob("*.lock")) == []  # the failed claim let go


def test_a_full_disk_while_appending_is_one_clear_error() -> None:
    writer = JournalWriter(Path("/dev/full"))  # every write: ENOSPC
    with pytest.raises(JournalError) as caught:
        writer.part_done(1, '"e"', "c")
    writer.close()
    assert "No space left on device" in str(caught.value)
