"""Connection details (key i / the command palette): the S3 store's capability record and the
SFTP link's measured RTT and read ceiling, also shown compactly in the figures line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import TextArea

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import ChecksumChoice, MiB
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.s3.checksums import SESSION_PROBES
from sftp_s3_tui.engine.sftp.server_profile import ServerProfile
from sftp_s3_tui.metrics.sampler import SftpLinkStats
from sftp_s3_tui.ui.screens.connection_details import (
    ConnectionDetailsScreen,
    details_text,
    format_ceiling,
)
from sftp_s3_tui.ui.widgets.resources import LinkLine, link_text
from tests.support.fault_proxy import proxied
from tests.support.servers import S3Store, SftpServerInfo
from tests.ui.helpers import _fixed_info, browse_ready, make_app, server_profile, wait_for


def _details(app: Any) -> str:
    screen = app.screen
    if not isinstance(screen, ConnectionDetailsScreen) or not screen.query(TextArea):
        return ""
    return screen.query_one(TextArea).text


def _palette_hits(app: Any) -> str:
    screen = app.screen
    if not isinstance(screen, CommandPalette) or not screen.query(CommandList):
        return ""
    hits = screen.query_one(CommandList)
    return " ".join(str(hits.get_option_at_index(i).prompt) for i in range(hits.option_count))


def _row(text: str, label: str) -> str:
    """The value of the first row whose label is ``label``."""
    for line in text.splitlines():
        if line.startswith(label + " "):
            return line[len(label) :].strip()
    raise AssertionError(f"no {label!r} row in:\n{text}")


@pytest.mark.all_stores
async def test_the_store_record_is_shown_after_the_first_copy_and_reused(
    openssh_sftp: SftpServerInfo, s3_store: S3Store, tmp_path: Path
) -> None:
    """moto stores what it is sent; SeaweedFS refuses a wrong checksum or Content-MD5."""
    openssh_sftp.write_file("a.csv", b"id\n1\n")
    openssh_sftp.write_file("b.csv", b"id\n2\n")
    endpoint = s3_store.endpoint()
    # The records are the process's (one per store and bucket): forget those earlier tests in
    # this worker left for this store, so this test sees the first probe.
    SESSION_PROBES.records.clear()
    profile = server_profile(openssh_sftp, endpoint, bucket=s3_store.bucket)
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 50)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        session = app.session
        assert session is not None
        await pilot.press("i")
        await wait_for(pilot, lambda: "not probed yet" in _details(app), what="details")
        assert _row(_details(app), "URL") == endpoint.endpoint_url
        assert _row(_details(app), "Checksum strategy") == "auto"
        await pilot.press("escape")

        dest = parse_s3_url(f"s3://{s3_store.bucket}/")
        await session.queue_paths([openssh_sftp.remote_path("a.csv")], dest)
        await session.queue_paths([openssh_sftp.remote_path("b.csv")], dest)
        transfers = session.queue.transfers.values()
        await wait_for(pilot, lambda: all(t.state.finished for t in transfers), 60, "copies")
        assert {t.state for t in transfers} == {TransferState.DONE}

        await app.run_action("connection_details")  # as the command palette does
        await wait_for(pilot, lambda: "Store check:" in _details(app), what="the record")
        text = _details(app)
        [record] = [r for r in SESSION_PROBES.known() if r.bucket == s3_store.bucket]
        assert f"── Store check: {s3_store.bucket} ──" in text
        assert text.count("── Store check:") == 1  # probed once for both files
        assert _row(text, "Checksum in use").startswith(f"{record.algorithm} (auto: ")
        assert record.algorithm is ChecksumChoice.CRC64NVME
        assert "FULL_OBJECT accepted" in _row(text, "Full object")
        checked = _row(text, "x-amz-checksum-crc64nvme")
        md5 = _row(text, "Content-MD5")
        if s3_store.kind == "seaweedfs":
            assert "validated (a wrong value is refused)" in checked
            assert md5.startswith("validated")
        else:  # moto keeps whatever it is sent
            assert "not validated" in checked and md5 == "not validated"
        assert _row(text, "Probe 1") == record.findings[0]
        # neither store checks a signed body's SHA-256, so none is computed (payload signing)
        assert _row(text, "Body SHA-256").startswith("not checked by the store")
        assert "Conditional writes" in text
        await app.close_all()


@pytest.fixture
def far_sshd(openssh_sftp: SftpServerInfo, tmp_path: Path) -> Iterator[SftpServerInfo]:
    """The real sshd behind the fault proxy with 50 ms of round trip added."""
    with proxied(openssh_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.set_rtt(0.05)
        yield server


async def test_a_far_hosts_rtt_and_ceiling_are_shown_with_the_knobs(
    far_sshd: SftpServerInfo, s3_store: S3Store, tmp_path: Path
) -> None:
    far_sshd.write_file("x.csv", b"x\n")
    profile = server_profile(far_sshd, s3_store.endpoint(), bucket=s3_store.bucket)
    profile = replace(profile, sftp=replace(profile.sftp, connections=3, window=8 * MiB))
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 50)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), 60, "browse")
        figures = app.screen.query_one(LinkLine)
        await wait_for(pilot, lambda: "sftp rtt" in str(figures.render()), what="figures")
        assert figures.display
        session = app.session
        assert session is not None
        # The login's RTT samples keep coming while the listing runs, each lower one moving
        # the figures: wait for the last, then for the line to show it (read too early, the
        # line and the details below disagreed, e.g. 79 ms then 52 ms).
        await session.queue.sftp.settled_far(session.target.sftp)
        settled = session.queue.sftp.link(session.target.sftp)
        assert settled is not None
        settled_ceiling = format_ceiling(8 * MiB / settled.rtt_seconds)
        await wait_for(
            pilot, lambda: f"ceiling {settled_ceiling}" in str(figures.render()), what="settled"
        )
        line = str(figures.render())
        rtt_ms = int(re.search(r"rtt (\d+) ms", line).group(1))  # type: ignore[union-attr]
        assert rtt_ms >= 50
        assert "1 conn" in line  # one login so far (listing); more open while reading
        assert "knobs: the profile's Connections, SSH window" in line

        await pilot.press("ctrl+p", *"connection details")  # from the command palette
        await wait_for(pilot, lambda: "Connection details" in _palette_hits(app), what="hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Read ceiling" in _details(app), what="details")
        text = _details(app)
        link = session.queue.sftp.link(session.target.sftp)
        assert link is not None and link.rtt_seconds >= 0.05
        assert _row(text, "Round trip") == f"{link.rtt_seconds * 1000:.1f} ms (measured at login)"
        assert _row(text, "Connections") == "1 open of 3"
        assert _row(text, "Window") == "8.0 MiB per connection"
        ceiling = 8 * MiB * 1 / link.rtt_seconds
        assert _row(text, "Read ceiling").startswith(format_ceiling(ceiling) + " = window")
        assert f"ceiling {format_ceiling(ceiling)}" in line
        assert "--connections / --window" in _row(text, "To go faster")
        assert _row(text, "Host").endswith(f":{far_sshd.port}")
        fingerprint = await session.queue.sftp.host_key_fingerprint(session.target.sftp)
        assert _row(text, "Host key") == fingerprint
        # OpenSSH answers limits@openssh.com: reads of 255 KiB (asyncssh's default is 16 KiB)
        limits = _row(text, "Server limits")
        assert limits == "read 255.0 KiB, write 255.0 KiB per request (limits@openssh.com)"
        assert _row(text, "Link settings") == "up to 3 connection(s), SSH window 8.0 MiB each"
        # The server's profile, probed at its first login: banner, reads, extensions.
        assert _row(text, "Banner").startswith("SSH-2.0-OpenSSH")
        assert _row(text, "Server profile").startswith(
            "SFTP v3 · reads 255 KiB (limits@openssh.com)"
        )
        assert "posix-rename@openssh.com" in _row(text, "Extensions")
        # One login so far (browsing opens no more); the rename is probed only by --move-to.
        assert _row(text, "Sessions").startswith("1 open at most of 3 allowed")
        assert _row(text, "Plain rename").startswith("not probed")
        await app.close_all()


def test_connection_details_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(ConnectionDetailsScreen(None, _fixed_info()))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConnectionDetailsScreen))

    app = make_app(tmp_path, journal_dir=None)
    assert snap_compare(app, terminal_size=(150, 62), run_before=run_before)


def test_the_link_line_says_when_the_link_is_the_limit() -> None:
    """100 ms and a 2 MiB window: at most 20 MiB/s; a copy at 90 % of it is told the knobs."""
    link = SftpLinkStats(
        host="sftp://etl@far.example",
        rtt_seconds=0.1,
        window_bytes=2 * MiB,
        connections=1,
        ceiling_bytes_per_second=2 * MiB / 0.1,
    )
    near = str(link_text((link,), bytes_per_second=0.9 * link.ceiling_bytes_per_second))
    assert near.startswith("sftp rtt 100 ms · ceiling 20 MiB/s · 1 conn  ")
    assert "the link limits this copy: raise the profile's Connections or SSH window" in near
    idle = str(link_text((link,), bytes_per_second=1e6))
    assert "knobs: the profile's Connections, SSH window" in idle
    other = replace(link, host="sftp://b", ceiling_bytes_per_second=5e9, rtt_seconds=0.001)
    assert "(+1 host)" in str(link_text((other, link)))  # the slowest host is shown
    assert "rtt 100 ms" in str(link_text((other, link)))


def test_the_sessions_and_rename_rows_say_what_the_profile_learned() -> None:
    """A server that refused the second of four connections and whose plain rename
    replaces: the details say its cap and that archive moves do not rely on the rename."""
    server = ServerProfile(
        banner="SSH-2.0-Appliance",
        sftp_version=3,
        connections_asked=4,
        connections_granted=1,
        connections_refused=3,
        rename_overwrites="replaces",
    )
    text = details_text(replace(_fixed_info(), server=server))
    assert _row(text, "Sessions") == (
        "the server grants 1 of 4 (refused at 2); no more are asked for"
    )
    assert _row(text, "Plain rename").startswith("REPLACES an existing target (probed)")
    assert "grants 1 of 4 connections (refused at 2)" in _row(text, "Server profile")
    assert "plain rename replaces an existing file" in _row(text, "Server profile")
