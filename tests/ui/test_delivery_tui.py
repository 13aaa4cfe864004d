"""S3 → SFTP from the TUI: ``d`` on the bucket pane delivers the object or prefix under the
cursor into the SFTP folder shown, each object a row of the transfer list (real sshd, moto)."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, TextArea, Tree

from sftp_s3_tui.engine.addresses import S3Location
from sftp_s3_tui.engine.config import MiB, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import Direction, TransferState
from sftp_s3_tui.requests.delivery import folder_delivery_request
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.connect import ConnectScreen
from sftp_s3_tui.ui.screens.detail import TransferDetailScreen
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from sftp_s3_tui.ui.screens.help import HelpScreen, key_groups
from sftp_s3_tui.ui.widgets.bucket_picker import BucketPicker
from sftp_s3_tui.ui.widgets.profile_form import ProfileForm
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from sftp_s3_tui.ui.widgets.resources import LinkLine
from sftp_s3_tui.ui.widgets.throughput import Throughput
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.support.fault_proxy import FaultProxy, proxied
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

    def on_it() -> bool:
        """On ``key`` yet? If not, move there (again): the tree may have been refreshed
        since, its nodes replaced and the cursor back on the bucket, as a user would see."""
        location = picker.cursor_location()
        if location is not None and location.key == key:
            return True
        node = _node(tree, key)
        if node is not None:
            tree.move_cursor(node)
        return False

    await wait_for(pilot, on_it, what=f"the cursor on {key}")


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
        # the engine told each object's life once: the sampler (the metrics) counts them
        # as deliveries, apart from uploads
        snapshot = session.sampler.sample_now()
        down = snapshot.direction(Direction.S3_TO_SFTP)
        assert down is not None and (down.files_done, down.files_failed) == (2, 0)
        assert down.bytes_transferred == len(big) + len(b"id\n1\n")
        assert snapshot.direction(Direction.SFTP_TO_S3) is None
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
        assert "Verified by  crc64nvme+size" in details or "Verified by  crc32+size" in details
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
    with proxied(embedded_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.throttle(4 * MiB, "up")
        yield server


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
        down = session.sampler.sample_now().direction(Direction.S3_TO_SFTP)
        assert down is not None and (down.files_cancelled, down.files_done) == (1, 0)
        assert not (root / "big.bin").exists()
        assert not [name for name in os.listdir(root) if name.startswith(".big.bin")]
        await app.close_all()


async def test_a_delivery_shows_the_sftp_link_it_writes_over(
    slow_upstream: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """The figures under the transfers speak of the delivery's SFTP side as they do of an
    upload's: the rate moves, and the link line gives the target host's measured round trip,
    ceiling and connections (the pool that writes to the partner)."""
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=os.urandom(64 * MiB))
    slow_upstream.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(slow_upstream, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await _cursor_on(pilot, "out/big.bin")
        await pilot.press("d")
        session = app.session
        assert session is not None
        panel = app.screen.query_one(TransferPanel)
        host = session.target.sftp.display

        def link_shown() -> bool:
            snapshot = session.sampler.latest
            links = [link for link in snapshot.sftp_links if link.host == host]
            line = panel.query_one(LinkLine)
            return (
                bool(links)
                and links[0].rtt_seconds > 0
                and links[0].connections >= 1
                and bool(line.display)
                and "rtt" in line.render().plain
                and panel.query_one(Throughput).bytes_per_second > 0
                and session.deliveries.running()
            )

        await wait_for(pilot, link_shown, timeout=60, what="the delivery's link figures")
        text = " ".join(screen_text(app).split())
        assert "sftp rtt" in text and "ceiling" in text and "conn" in text, text
        assert "MiB/s" in text, text
        await app.close_all()


@pytest.fixture
def slow_read_back(embedded_sftp: SftpServerInfo, tmp_path: Path) -> Iterator[SftpServerInfo]:
    """The embedded server behind a proxy answering at 2 MiB/s: writes go at full speed,
    a read back of 16 MiB takes a while (long enough to be seen)."""
    with proxied(embedded_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.throttle(2 * MiB, "down")
        yield server


async def test_a_delivery_row_says_how_far_its_read_back_is(
    slow_read_back: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """A delivery read back before its rename (verify_readback) says "reading back N%" in
    its row's note while it reads, instead of sitting at 100% as if hung; then it lands."""
    data = os.urandom(16 * MiB)
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=data)
    slow_read_back.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(slow_read_back, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        session = app.session
        assert session is not None
        target = session.target
        request = folder_delivery_request(
            S3Location(bucket, "out/big.bin"),
            slow_read_back.remote_path(""),
            target.sftp,
            target.s3,
            target.options,
            record_dir=session.deliveries.record_dir,
        )
        request = replace(request, options=replace(request.options, verify_readback=True))
        (delivery,) = await session.deliveries.start(request)
        table = app.screen.query_one(TransferPanel).transfer_list
        notes: set[str] = set()

        def reading_back() -> bool:
            cells = (
                table.cells(delivery.transfer_id)
                if table.index_of(delivery.transfer_id) is not None
                else ()
            )
            note = cells[-1].plain if cells else ""
            if note.startswith("reading back "):
                notes.add(note)
            return len(notes) >= 2  # seen moving

        await wait_for(pilot, reading_back, timeout=120, what="the read back in the row")
        await wait_for(
            pilot, lambda: delivery.state is TransferState.DONE, timeout=120, what="the end"
        )
        assert delivery.result is not None and "readback-sha256" in delivery.result.message
        note = table.cells(delivery.transfer_id)[-1].plain
        assert "reading back" not in note, note  # the end says what it was verified by
        await app.close_all()
    assert (slow_read_back.root / "big.bin").read_bytes() == data
    assert _left_over(slow_read_back.root) == []


async def test_a_profile_asking_for_read_back_has_the_tuis_deliveries_read_back(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """ "Read back" ticked in the profile form is saved with the partner's profile
    (``[delivery] verify_readback``) and ``d`` then delivers with it: the file is read back
    over SFTP before its rename, and its row and result say so."""
    data = os.urandom(3 * MiB + 17)
    s3.put_object(Bucket=bucket, Key="out/ledger.bin", Body=data)
    openssh_sftp.write_file("inbox/.keep", b"")
    app = make_app(tmp_path)
    inbox = openssh_sftp.root / "inbox"
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen), what="the form")
        form = app.screen.query_one(ProfileForm)
        profile = server_profile(openssh_sftp, s3_endpoint, bucket=bucket, prefix="out/")
        form.load(replace(profile, name="flaky"))
        readback = form.query_one("#f-verify-readback", Checkbox)
        await wait_for(pilot, lambda: not readback.value, what="the form loaded")
        readback.value = True  # as a click or space on it would
        await pilot.press("f2")
        saved = tmp_path / "profiles.toml"
        await wait_for(pilot, saved.exists, what="the profile saved")
        written = tomllib.loads(saved.read_text())["profiles"]["flaky"]
        assert written["delivery"] == {"verify_readback": True}

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: browse_ready(app), timeout=60, what="browse")
        session = app.session
        assert session is not None
        assert session.target.delivery.verify_readback
        tree = app.screen.query_one(RemoteTree)
        tree.load_folder(openssh_sftp.remote_path("inbox"))
        await wait_for(pilot, lambda: tree.path.endswith("/inbox"), what="the inbox shown")
        await _cursor_on(pilot, "out/ledger.bin")
        await pilot.press("d")
        deliveries = session.deliveries.items
        await wait_for(
            pilot,
            lambda: len(deliveries) == 1 and next(iter(deliveries.values())).state.finished,
            timeout=120,
            what="the delivery's end",
        )
        (delivery,) = deliveries.values()
        assert delivery.state is TransferState.DONE, delivery.result
        assert delivery.request.options.verify_readback
        assert delivery.result is not None and "readback-sha256" in delivery.result.message
        # its details (enter on its row) say what it was verified by
        table = app.screen.query_one(TransferPanel).transfer_list
        await pilot.press("t")
        await wait_for(pilot, lambda: table.has_focus, what="the transfer list")
        index = table.index_of(delivery.transfer_id)
        assert index is not None
        table.move_cursor(row=index)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TransferDetailScreen), what="details")
        details = app.screen.query_one("#detail-text", TextArea).text
        assert "readback-sha256" in details, details
        await app.close_all()
    assert (inbox / "ledger.bin").read_bytes() == data
    assert _left_over(inbox) == [".keep"]


# pause, resume, retry on delivery rows (issue 28) ------------------------------------------


@pytest.fixture
def slow_link(
    embedded_sftp: SftpServerInfo, tmp_path: Path
) -> Iterator[tuple[SftpServerInfo, FaultProxy]]:
    """As ``slow_upstream``, with the proxy at hand: ``proxy.throttle(None, "up")`` lets
    the deliveries finish at once."""
    with proxied(embedded_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.throttle(4 * MiB, "up")
        yield server, proxy


async def _focus_row(pilot: Any, transfer_id: int) -> None:
    """The transfer list focused, its cursor on ``transfer_id``'s row (as t and the arrows)."""
    table = pilot.app.screen.query_one(TransferPanel).transfer_list
    if not table.has_focus:
        await pilot.press("t")
        await wait_for(pilot, lambda: table.has_focus, what="the transfer list")
    await wait_for(pilot, lambda: table.index_of(transfer_id) is not None, what="the row")
    index = table.index_of(transfer_id)
    assert index is not None
    table.move_cursor(row=index)


def _records(folder: Path) -> list[dict[str, Any]]:
    """The delivery records in ``folder`` (what a paused or killed delivery left)."""
    if not folder.exists():
        return []
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


async def test_r_on_a_failed_delivery_row_delivers_it_again_on_the_same_row(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """The object is deleted between the plan and the delivery (a real 404): the row
    fails; once it is back, r on the row delivers it (a fresh attempt, the same row)."""
    body = os.urandom(3 * MiB + 7)
    s3.put_object(Bucket=bucket, Key="out/report.csv", Body=body)
    openssh_sftp.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(openssh_sftp, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = openssh_sftp.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        session = app.session
        assert session is not None
        items = session.deliveries.items
        await _cursor_on(pilot, "out/report.csv")
        await pilot.press("D")  # the plan first: the object goes meanwhile
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the plan")
        s3.delete_object(Bucket=bucket, Key="out/report.csv")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(items) == 1, what="the row")
        (transfer_id,) = items
        delivery = items[transfer_id]
        await wait_for(pilot, lambda: delivery.state.finished, timeout=60, what="the failure")
        assert delivery.state is TransferState.FAILED, delivery.result
        assert not (root / "report.csv").exists() and _left_over(root) == []

        s3.put_object(Bucket=bucket, Key="out/report.csv", Body=body)
        await _focus_row(pilot, transfer_id)
        await pilot.press("r")
        await wait_for(
            pilot, lambda: delivery.state is TransferState.DONE, timeout=60, what="the retry"
        )
        rows = app.screen.query_one(TransferPanel).transfer_list.rows_by_id
        assert list(items) == [transfer_id]  # the same row, not a new one
        assert rows[transfer_id].state is TransferState.DONE
        assert session.unfinished == set()
        await pilot.press("r")  # a delivered row: nothing to retry, said
        assert delivery.state is TransferState.DONE
        await app.close_all()
    assert (root / "report.csv").exists(), (delivery.result, sorted(os.listdir(root)))
    assert (root / "report.csv").read_bytes() == body
    assert _left_over(root) == []
    assert _records(tmp_path / "deliveries") == []


async def test_p_on_a_queued_delivery_keeps_it_from_starting_until_p_again(
    slow_link: tuple[SftpServerInfo, FaultProxy],
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """Four objects take the four files in flight (``--files 4``); the fifth, queued, is
    paused: it does not start when the others end, and p delivers it."""
    server, proxy = slow_link
    bodies = {f"out/a{n}.bin": os.urandom(16 * MiB) for n in range(4)}
    bodies["out/b.bin"] = os.urandom(MiB + 5)
    for key, data in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    server.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile, transfer_options=TransferOptions(files_in_flight=4))
    root = server.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        session = app.session
        assert session is not None
        items = session.deliveries.items
        await _cursor_on(pilot, "out/")
        await pilot.press("d")
        await wait_for(pilot, lambda: len(items) == 5, what="the rows")
        by_key = {d.job.key: d for d in items.values()}
        last = by_key["out/b.bin"]
        others = [d for key, d in by_key.items() if key != "out/b.bin"]

        def four_running() -> bool:
            return all(d.state is TransferState.RUNNING for d in others)

        await wait_for(pilot, four_running, timeout=60, what="four files in flight")
        assert last.state is TransferState.QUEUED
        await _focus_row(pilot, last.transfer_id)
        await pilot.press("p")
        assert last.state is TransferState.PAUSED
        proxy.throttle(None, "up")
        await wait_for(
            pilot,
            lambda: all(d.state is TransferState.DONE for d in others),
            timeout=120,
            what="the others' end",
        )
        assert last.state is TransferState.PAUSED  # a free slot did not start it
        assert session.unfinished == {last.transfer_id}
        assert not (root / "b.bin").exists()
        assert not [n for n in os.listdir(root) if n.startswith(".b.bin")]

        await _focus_row(pilot, last.transfer_id)
        await pilot.press("p")
        await wait_for(
            pilot, lambda: last.state is TransferState.DONE, timeout=60, what="its delivery"
        )
        await app.close_all()
    for key, data in bodies.items():
        assert (root / key.removeprefix("out/")).read_bytes() == data
    assert _left_over(root) == []


async def _pause_running(
    pilot: Any, tmp_path: Path, root: Path, name: str, key: str = "p"
) -> tuple[Any, dict[str, Any]]:
    """Deliver ``out/NAME`` (d), wait until its record says some of it is written, then
    ``key`` (p on its row, or P): the delivery and the record it kept once it stopped."""
    app = pilot.app
    session = app.session
    assert session is not None
    items = session.deliveries.items
    await _cursor_on(pilot, f"out/{name}")
    await pilot.press("d")
    await wait_for(pilot, lambda: len(items) == 1, what="the row")
    (delivery,) = items.values()
    records = tmp_path / "deliveries"

    def some_written() -> bool:
        return any(r["written"] > 0 for r in _records(records))

    # the row focused first: on a loaded machine focusing it took long enough for the whole
    # object to pass the throttle between the checkpoint and the key
    await _focus_row(pilot, delivery.transfer_id)
    await wait_for(pilot, some_written, timeout=120, what="a checkpoint in the record")
    await pilot.press(key)
    assert delivery.state is TransferState.PAUSED
    task = delivery.task
    await wait_for(pilot, lambda: task is not None and task.done(), timeout=60, what="the stop")
    assert delivery.state is TransferState.PAUSED and delivery.kept
    (record,) = _records(records)
    left = root / record["temp_path"].rsplit("/", 1)[-1]
    assert left.exists() and left.name.startswith(f".{name}.")  # kept, named by its record
    assert left.stat().st_size >= record["written"] > 0
    return delivery, record


async def test_p_on_a_running_delivery_keeps_its_file_and_p_resumes_from_it(
    slow_link: tuple[SftpServerInfo, FaultProxy],
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """A running delivery paused stops at once, its temporary file and record kept; p
    again goes on from the read-back, verified prefix: the file lands byte-exact, the
    result says it resumed, and only what was missing went over the link."""
    server, proxy = slow_link
    big = os.urandom(64 * MiB)
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=big)
    server.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = server.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        delivery, record = await _pause_running(pilot, tmp_path, root, "big.bin")
        assert not (root / "big.bin").exists()

        proxy.throttle(None, "up")
        proxy.reset_counters()
        await pilot.press("p")
        await wait_for(
            pilot, lambda: delivery.state is TransferState.DONE, timeout=120, what="the resume"
        )
        sent = proxy.bytes_up
        assert delivery.result is not None
        assert f"resumed {record['temp_path']} from byte" in delivery.result.message
        assert sent < len(big)  # the kept prefix was not sent again

        def chunk_map_full() -> bool:  # the kept parts shown done, not sent again
            session = app.session
            assert session is not None
            shown = [
                t for t in session.sampler.latest.transfers if t.transfer_id == delivery.transfer_id
            ]
            return bool(shown) and shown[0].bytes_done == len(big) == shown[0].size

        await wait_for(pilot, chunk_map_full, what="the chunk map full")

        await _focus_row(pilot, delivery.transfer_id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TransferDetailScreen), what="details")
        details = app.screen.query_one("#detail-text", TextArea).text
        assert "resumed" in details, details
        await pilot.press("escape")
        await app.close_all()
    assert (root / "big.bin").read_bytes() == big
    assert _left_over(root) == []
    assert _records(tmp_path / "deliveries") == []
    assert list((tmp_path / "deliveries").iterdir()) == []  # no lock file either


async def test_quitting_with_a_paused_delivery_says_so_and_removes_its_file(
    slow_link: tuple[SftpServerInfo, FaultProxy],
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    server, _ = slow_link
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=os.urandom(64 * MiB))
    server.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = server.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        delivery, _ = await _pause_running(pilot, tmp_path, root, "big.bin")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        text = " ".join(screen_text(app).split())
        assert "1 transfer(s) have not finished" in text, text
        assert "1 paused delivery kept the part already sent" in text, text
        assert "temporary file is removed too" in text, text
        await pilot.press("y")
        await wait_for(pilot, lambda: app._exit, timeout=60, what="the app to exit")
    assert delivery.state is TransferState.CANCELLED
    assert not (root / "big.bin").exists()
    assert _left_over(root) == []
    assert _records(tmp_path / "deliveries") == []


async def test_pause_all_then_x_on_the_paused_delivery_removes_its_file_and_r_redoes_it(
    slow_link: tuple[SftpServerInfo, FaultProxy],
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """P pauses deliveries too (their files kept); x on a paused one gives it up: its kept
    temporary file and record go, the row says cancelled; r delivers it afresh."""
    server, proxy = slow_link
    big = os.urandom(64 * MiB)
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=big)
    server.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    root = server.root
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        delivery, record = await _pause_running(pilot, tmp_path, root, "big.bin", key="P")
        kept = record["temp_path"].rsplit("/", 1)[-1]
        await pilot.press("x")
        await wait_for(
            pilot,
            lambda: delivery.state is TransferState.CANCELLED,
            timeout=60,
            what="the cancel",
        )
        assert _left_over(root) == [] and _records(tmp_path / "deliveries") == []

        proxy.throttle(None, "up")
        await pilot.press("r")
        await wait_for(
            pilot, lambda: delivery.state is TransferState.DONE, timeout=120, what="the retry"
        )
        assert delivery.result is not None and "resumed" not in delivery.result.message
        assert not (root / kept).exists()
        await app.close_all()
    assert (root / "big.bin").read_bytes() == big
    assert _left_over(root) == []
    assert _records(tmp_path / "deliveries") == []


async def test_the_cursor_stays_on_its_object_when_the_bucket_tree_is_listed_again(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    """Objects landing (or F5) list the tree again; the cursor must stay on the object the
    user chose, not fall back onto the bucket, where d would deliver the whole bucket."""
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a\n")
    openssh_sftp.write_file("README.txt", b"the partner's folder\n")
    profile = server_profile(openssh_sftp, s3_endpoint, bucket=bucket, prefix="out/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await _cursor_on(pilot, "out/a.csv")
        picker = app.screen.query_one(BucketPicker)
        tree = picker.s3_tree

        s3.put_object(Bucket=bucket, Key="out/b.csv", Body=b"b\n")
        picker.refresh_prefix(bucket, "out/")  # what the screen does once objects land
        await wait_for(pilot, lambda: _node(tree, "out/b.csv") is not None, what="b listed")
        await pilot.pause()  # the cursor is put back once the tree is laid out again
        location = picker.cursor_location()
        assert location is not None and location.key == "out/a.csv"

        s3.put_object(Bucket=bucket, Key="out/c.csv", Body=b"c\n")
        await pilot.press("f5")  # every bucket listed again, from the top
        await wait_for(pilot, lambda: _node(tree, "out/c.csv") is not None, what="c listed")
        await wait_for(
            pilot,
            lambda: (where := picker.cursor_location()) is not None and where.key == "out/a.csv",
            what="the cursor back on out/a.csv",
        )
        await app.close_all()
