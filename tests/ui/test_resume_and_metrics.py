"""Start-up resume offer for unfinished journal entries; metrics pushed from the TUI."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.resume.journal import Journal, account_identity, endpoint_identity
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from tests.support.metrics import labelled_value
from tests.support.servers import PushGateway, SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


async def test_unfinished_transfers_are_offered_for_resume_on_connect(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    remote = embedded_sftp.write_file("big.bin", size=12 * MiB + 1, seed=9)
    stat = remote.local_path.stat()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="resumed/big.bin")
    source = f"sftp://{embedded_sftp.password_user}@{embedded_sftp.host}:{embedded_sftp.port}"
    journal = Journal(tmp_path / "journal")
    store = endpoint_identity(s3_endpoint.endpoint_url)
    records = journal.for_endpoint(store, account_identity(s3_endpoint.access_key_id))
    with records.claim(bucket, "resumed/big.bin") as claim:
        entry = claim.new_entry(
            f"{source}/big.bin", upload["UploadId"], 8 * MiB, stat.st_size, int(stat.st_mtime)
        )
        claim.start(entry).close()  # as if the app had crashed right after starting the upload
    # the same bucket/key on another store is not offered
    with journal.for_endpoint("https://elsewhere.example").claim(bucket, "resumed/big.bin") as c:
        c.start(c.new_entry(f"{source}/big.bin", "other-store", 8 * MiB, 1, 1)).close()

    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint, bucket=bucket))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the offer")
        offer = app.screen
        assert isinstance(offer, ConfirmScreen)
        assert f"s3://{bucket}/resumed/big.bin" in str(offer.body)
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        session = app.session
        assert session is not None
        await wait_for(pilot, lambda: len(session.queue.transfers) == 1, what="resumed")
        await wait_for(
            pilot,
            lambda: all(t.state.finished for t in session.queue.transfers.values()),
            timeout=60,
        )
        [transfer] = session.queue.transfers.values()  # only this store's record was offered
        assert transfer.state is TransferState.DONE, transfer.result
        await app.close_all()
    body = s3.get_object(Bucket=bucket, Key="resumed/big.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == remote.sha256
    assert [e.upload_id for e in journal.entries()] == ["other-store"]


async def test_metrics_are_pushed_while_the_tui_copies(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    fresh_pushgateway: PushGateway,
    tmp_path: Path,
) -> None:
    embedded_sftp.write_file("m.bin", size=6 * MiB, seed=4)
    profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket)
    app = make_app(tmp_path, initial=profile, push_gateway=fresh_pushgateway.url)
    async with app.run_test(size=(150, 45)) as pilot:
        # (browse_ready: a browse screen pushed but not composed yet has no RemoteTree to
        # query; asking for one there raised NoMatches under load)
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("c")
        session = app.session
        assert session is not None
        await wait_for(
            pilot,
            lambda: (
                session.queue.transfers
                and all(t.state.finished for t in session.queue.transfers.values())
            ),
            timeout=60,
        )
        await app.close_all()  # the exporter pushes a last time on the way out
    text = fresh_pushgateway.metrics_text()
    name = "sftp_s3_bytes_transferred_total"
    assert labelled_value(text, name, direction="sftp_to_s3") == 6 * MiB
    # the TUI can deliver too: that direction's series is there, at 0
    assert labelled_value(text, name, direction="s3_to_sftp") == 0
