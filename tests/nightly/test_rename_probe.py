"""A nightly run archives with ``--move-to`` and relies on the plain SFTP rename refusing an
existing target: each server's rename is probed once, in the archive folder, with two
throw-away files that never stay; a server whose rename replaces is archived to with a hard
link (which refuses an existing name), so a race never clobbers an archived file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asyncssh.sftp import SFTPServerHandler

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.nightly.source_actions import SourceAction
from sftp_s3_tui.engine.sftp.pool import SftpPool
from sftp_s3_tui.engine.sftp.server_profile import RENAME_REFUSING_BANNERS
from tests.support.nightly import manifest_rows, nightly, replacing_sftp
from tests.support.servers import SftpServerInfo
from tests.support.transfers import object_bytes

#: What each real family's plain rename does with an existing target (found by the probe).
RENAMES = {"openssh": "refuses", "proftpd": "refuses", "dropbear": "refuses"}


@pytest.mark.sftp_families
async def test_each_server_family_s_plain_rename_is_probed_and_the_probe_leaves_nothing(
    openssh_sftp: SftpServerInfo, sftp_family: str
) -> None:
    (openssh_sftp.root / "processed").mkdir()
    endpoint = openssh_sftp.endpoint()
    async with SftpPool() as pool:
        found = await pool.rename_behaviour(endpoint, openssh_sftp.remote_path("processed"))
        again = await pool.rename_behaviour(endpoint, openssh_sftp.remote_path("processed"))
        profile = pool.server_profile(endpoint)
    assert found == again == RENAMES[sftp_family]
    # a delivery trusts these families' rename without probing it (writer._publish_new)
    assert profile is not None and profile.banner.startswith(RENAME_REFUSING_BANNERS)
    assert profile is not None and profile.rename_overwrites == found
    assert profile.to_json()["rename_overwrites"] == found
    assert f"plain rename {found} an existing file" in profile.summary()
    assert list((openssh_sftp.root / "processed").iterdir()) == []


async def test_a_server_whose_rename_replaces_is_archived_to_by_hard_link_without_clobbering(
    tmp_path: Path, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """Yesterday's ``a.csv`` is archived; another archiver fills ``/processed/a.csv`` right
    after this run checked it was free (the server hides it from that one check). The plain
    rename would have replaced it; the hard link refuses, so today's file goes beside it."""
    appearing = {"/processed/a.csv"}
    async with replacing_sftp(tmp_path, appearing) as server:
        server.write_file("processed/a.csv", b"yesterday\n")
        server.write_file("drop/a.csv", b"today\n")
        async with SftpPool() as pool:  # the quirk is real: the probe sees the replace
            assert await pool.rename_behaviour(server.endpoint(), "/processed") == "replaces"
        report = await nightly(
            server,
            "/drop/",
            f"s3://{bucket}/in/",
            s3_endpoint,
            action=SourceAction(move_to="/processed/"),
            manifest=tmp_path / "m.jsonl",
        )
        archive = {p.name: p.read_bytes() for p in (server.root / "processed").iterdir()}

    assert object_bytes(s3, bucket, "in/a.csv") == b"today\n"
    assert not appearing  # the check was fooled once, as in the race
    [outcome] = report.outcomes
    assert outcome.action == "moved" and outcome.ok, outcome
    assert outcome.target is not None and outcome.target.startswith("/processed/a.csv.")
    assert archive == {"a.csv": b"yesterday\n", outcome.target[len("/processed/") :]: b"today\n"}
    assert not (server.root / "drop" / "a.csv").exists()
    [row] = [r for r in manifest_rows(tmp_path / "m.jsonl") if r["kind"] == "source_action"]
    assert (row["rename_overwrites"], row["moved_by"]) == ("replaces", "hardlink")


async def test_a_replacing_rename_without_hard_links_is_said_in_the_note(
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``hardlink@openssh.com`` the check-then-rename stays, and the outcome says a
    concurrent archiver could clobber an archived file."""
    no_links = [e for e in SFTPServerHandler._extensions if e[0] != b"hardlink@openssh.com"]
    monkeypatch.setattr(SFTPServerHandler, "_extensions", no_links)
    async with replacing_sftp(tmp_path) as server:
        server.write_file("processed/a.csv", b"yesterday\n")
        server.write_file("drop/a.csv", b"today\n")
        report = await nightly(
            server,
            "/drop/",
            f"s3://{bucket}/in/",
            s3_endpoint,
            action=SourceAction(move_to="/processed/"),
        )
        archive = {p.name: p.read_bytes() for p in (server.root / "processed").iterdir()}

    [outcome] = report.outcomes
    assert outcome.action == "moved" and outcome.ok, outcome
    assert (outcome.rename_overwrites, outcome.moved_by) == ("replaces", "rename")
    assert "plain rename replaces an existing file" in outcome.note
    assert "could clobber an archived file" in outcome.note
    assert archive["a.csv"] == b"yesterday\n" and len(archive) == 2
