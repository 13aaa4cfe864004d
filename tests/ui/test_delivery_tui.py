"""S3 → SFTP from the TUI: ``d`` on the bucket pane delivers the object or prefix under the
cursor into the SFTP folder shown, each object a row of the transfer list (real sshd, moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TextArea, Tree

from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.detail import TransferDetailScreen
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from sftp_s3_tui.ui.screens.help import HelpScreen, key_groups
from sftp_s3_tui.ui.widgets.bucket_picker import BucketPicker
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, screen_text, server_profile, wait_for


def _node(tree: Tree[Any], key: str) -> Any:
    """The loaded tree node for ``key`` (an object or a prefix), or None."""
    pending = [tree.root]
    while pending:
        node = pending.pop()
        if node.data is not None and node.data.prefix == key:
            return node
        pending.extend(node.children)
    return None


async def _cursor_on(pilot: Any, key: str) -> None:
    """Move the S3 tree's cursor to ``key`` once it is listed, as the arrow keys would."""
    picker = pilot.app.screen.query_one(BucketPicker)
    tree = picker.s3_tree
    await wait_for(pilot, lambda: _node(tree, key) is not None, what=f"{key} in the S3 tree")
    tree.focus()
    tree.move_cursor(_node(tree, key))
    await wait_for(pilot, lambda: picker.cursor_location() is not None, what="the cursor")


def _left_over(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


async def test_d_on_a_prefix_delivers_its_objects_into_the_sftp_folder_shown(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    big = os.urandom(20 * MiB + 123)  # three parts of 8 MiB
    s3.put_object(Bucket=bucket, Key="out/report.csv", Body=big)
    s3.put_object(Bucket=bucket, Key="out/small.txt", Body=b"id\n1\n")
    openssh_sftp.write_file("inbox/.keep", b"")
    profile = server_profile(openssh_sftp, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    inbox = openssh_sftp.root / "inbox"
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        tree.load_folder(openssh_sftp.remote_path("inbox"))
        await wait_for(pilot, lambda: tree.path.endswith("/inbox"), what="the inbox shown")

        await _cursor_on(pilot, "out/")
        footer = lambda: screen_text(app).splitlines()[-1]  # noqa: E731
        await wait_for(pilot, lambda: "d Deliver" in footer(), what="d in the footer")
        await pilot.press("d")

        def landed() -> bool:
            return (inbox / "report.csv").exists() and (inbox / "small.txt").exists()

        await wait_for(pilot, landed, timeout=120, what="both files on the SFTP side")
        session = app.session
        assert session is not None
        deliveries = session.deliveries.items
        await wait_for(
            pilot,
            lambda: len(deliveries) == 2 and all(d.state.finished for d in deliveries.values()),
            timeout=60,
            what="the deliveries' end",
        )

        def told(text: str) -> bool:
            return any(text in n.message for n in app._notifications)

        await wait_for(pilot, lambda: told("All transfers finished: 2 of 2 copied"), what="done")
        assert session.unfinished == set()
        rows = app.screen.query_one(TransferPanel).transfer_list.rows_by_id
        assert {rows[i].key for i in deliveries} == {"out/report.csv", "out/small.txt"}
        assert all(rows[i].state is TransferState.DONE for i in deliveries), [
            (rows[i].key, rows[i].state, rows[i].message) for i in deliveries
        ]
        assert rows[max(deliveries, key=lambda i: rows[i].size)].size == len(big)

        # enter on a delivery row: the same details dialog, its destination the SFTP path
        big_row = max(deliveries, key=lambda i: rows[i].size)
        table = app.screen.query_one(TransferPanel).transfer_list
        await pilot.press("t")  # wide: the transfer list beside the files takes the focus
        await wait_for(pilot, lambda: table.has_focus, what="the transfer list")
        index = table.index_of(big_row)
        assert index is not None
        table.move_cursor(row=index)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TransferDetailScreen), what="details")
        details = app.screen.query_one("#detail-text", TextArea).text
        destination = f"{openssh_sftp.endpoint().display}{openssh_sftp.remote_path('inbox')}/"
        assert f"Destination  {destination}report.csv" in details, details
        assert f"Source       s3://{bucket}/out/report.csv" in details, details
        assert "Verified by  crc64nvme+size" in details or "Verified by  md5+size" in details
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen), what="browse again")

        await pilot.press("question_mark")  # the key is in the help, under the S3 side
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        browse = app.screen_stack[-2]
        assert isinstance(browse, BrowseScreen)
        s3_keys = dict(key_groups(browse))["S3 side (right pane)"]
        assert any(key == "d" and what == "Deliver" for key, what, _ in s3_keys), s3_keys
        await app.close_all()

    assert (inbox / "report.csv").read_bytes() == big
    assert (inbox / "small.txt").read_bytes() == b"id\n1\n"
    assert _left_over(inbox) == [".keep"]  # no temporary file left


@pytest.fixture
def slow_upstream(embedded_sftp: SftpServerInfo, tmp_path: Path) -> Iterator[SftpServerInfo]:
    """The embedded server behind a proxy forwarding writes at 4 MiB/s: a delivery of
    64 MiB stays running (the quit question cannot be outrun)."""
    with FaultProxy(embedded_sftp.host, embedded_sftp.port) as proxy:
        known = tmp_path / "known_hosts-proxy"
        lines = embedded_sftp.known_hosts.read_text()
        known.write_text(lines.replace(f"]:{embedded_sftp.port} ", f"]:{proxy.port} "))
        proxy.throttle(4 * MiB, "up")
        yield replace(embedded_sftp, port=proxy.port, known_hosts=known)


async def test_quitting_mid_delivery_asks_then_leaves_no_temporary_file(
    slow_upstream: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """A delivery is work in progress like an upload: quitting asks, and the abort removes
    the temporary file on the SFTP side (nothing at the final name)."""
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=os.urandom(64 * MiB))
    slow_upstream.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(slow_upstream, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = slow_upstream.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await _cursor_on(pilot, "out/big.bin")
        await pilot.press("d")
        session = app.session
        assert session is not None

        def running() -> bool:
            return any(d.state is TransferState.RUNNING for d in session.deliveries.items.values())

        await wait_for(pilot, running, timeout=60, what="a running delivery")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app._exit, timeout=60, what="the app to exit")
    assert [d.state for d in session.deliveries.items.values()] == [TransferState.CANCELLED]
    assert not (root / "big.bin").exists()
    assert not [name for name in os.listdir(root) if name.startswith(".big.bin")]


async def test_a_delivery_onto_files_already_there_shows_its_plan_first(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """A file at a final name is kept (skip-existing: a partner may be reading it): the plan
    says so before anything is sent; D always shows it, and its Esc sends nothing."""
    s3.put_object(Bucket=bucket, Key="out/report.csv", Body=b"new report\n")
    s3.put_object(Bucket=bucket, Key="out/extra.csv", Body=b"extra\n")
    openssh_sftp.write_file("report.csv", b"the partner's copy\n")
    profile = server_profile(openssh_sftp, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = openssh_sftp.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        session = app.session
        assert session is not None

        await _cursor_on(pilot, "out/extra.csv")
        await pilot.press("D")  # always the plan; esc: nothing is sent
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the plan")
        assert "+ new   s3://" in screen_text(app) and "extra.csv" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen), what="browse")
        assert session.deliveries.items == {} and not (root / "extra.csv").exists()

        await _cursor_on(pilot, "out/")
        await pilot.press("d")  # report.csv is there: the plan comes first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the plan")
        text = screen_text(app)
        assert f"– kept  s3://{bucket}/out/report.csv" in text, text
        assert f"+ new   s3://{bucket}/out/extra.csv" in text, text
        assert "1 new · 1 kept" in text, text
        await pilot.press("y")
        deliveries = session.deliveries.items
        await wait_for(
            pilot,
            lambda: len(deliveries) == 2 and all(d.state.finished for d in deliveries.values()),
            timeout=60,
            what="the deliveries' end",
        )
        states = {d.job.key: d.state for d in deliveries.values()}
        assert states == {
            "out/report.csv": TransferState.SKIPPED,
            "out/extra.csv": TransferState.DONE,
        }
        await app.close_all()
    assert (root / "report.csv").read_bytes() == b"the partner's copy\n"
    assert (root / "extra.csv").read_bytes() == b"extra\n"
    assert _left_over(root) == []


async def test_x_on_a_delivery_row_cancels_it_and_removes_its_temporary_file(
    slow_upstream: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=os.urandom(64 * MiB))
    slow_upstream.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(slow_upstream, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = slow_upstream.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await _cursor_on(pilot, "out/big.bin")
        await pilot.press("d")
        session = app.session
        assert session is not None
        items = session.deliveries.items

        def running() -> bool:
            return any(d.state is TransferState.RUNNING for d in items.values())

        await wait_for(pilot, running, timeout=60, what="a running delivery")
        table = app.screen.query_one(TransferPanel).transfer_list
        await pilot.press("t")
        await wait_for(pilot, lambda: table.has_focus, what="the transfer list")
        (transfer_id,) = items
        index = table.index_of(transfer_id)
        assert index is not None
        table.move_cursor(row=index)
        await pilot.press("x")
        await wait_for(
            pilot,
            lambda: items[transfer_id].state is TransferState.CANCELLED,
            timeout=60,
            what="the cancel",
        )
        assert table.rows_by_id[transfer_id].state is TransferState.CANCELLED
        assert not (root / "big.bin").exists()
        assert not [name for name in os.listdir(root) if name.startswith(".big.bin")]
        await app.close_all()
