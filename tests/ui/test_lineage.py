"""The platform hears of copies and watches started in the TUI as it hears of the CLI's: one
OpenLineage run per copy action (and per watch poll) on a real HTTP receiver, with the CLI's
datasets and per-file facet, and the profile's healthchecks-style hooks — never a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.widgets import Input

from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.resume.journal import Journal, account_identity, endpoint_identity
from sftp_s3_tui.profiles.model import NotifySettings
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from sftp_s3_tui.ui.screens.plan import PlanScreen
from sftp_s3_tui.ui.screens.watch import WatchDialog
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.receiver import Receiver, http_receiver
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for

AWS_SECRET = "AwsSecret/tui+never+shown/0123456789"
LINEAGE = "/api/v1/lineage"


@pytest.fixture
def aws_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The S3 secret key the app signs with (moto accepts any)."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    return AWS_SECRET


def _events(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.wait_for(count, LINEAGE)]


async def _open_data_folder(pilot: Any, app: Any, files: int) -> RemoteTree:
    await wait_for(pilot, lambda: browse_ready(app), what="the browse screen")
    tree: RemoteTree = app.screen.query_one(RemoteTree)
    await pilot.press("enter")  # open data/
    await wait_for(
        pilot, lambda: tree.path == "/data" and len(tree.entries) == files and tree.ready
    )
    return tree


async def test_a_tui_copy_is_one_lineage_run_with_the_files_and_a_hook_pair(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_secret: str,
) -> None:
    big = embedded_sftp.write_file("data/big.bin", size=6 * MiB + 7, seed=4)
    small = embedded_sftp.write_file("data/small.csv", b"id,name\n1,Ada\n")
    embedded_sftp.write_file("data/other.bin", size=100, seed=5)
    assert embedded_sftp.password
    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
        profile = replace(profile, notify=NotifySettings(hook_url=f"{receiver.url}/ping/tui"))
        app = make_app(tmp_path, initial=profile)
        async with app.run_test(size=(150, 45)) as pilot:
            tree = await _open_data_folder(pilot, app, 3)
            # rows: .., big.bin, other.bin, small.csv
            await pilot.press("down", "space", "down", "down", "space", "c")
            session = app.session
            assert session is not None
            await wait_for(pilot, lambda: len(session.queue.transfers) == 2, what="queued")
            await wait_for(pilot, lambda: len(receiver.at(LINEAGE)) == 2, timeout=60)
            await wait_for(pilot, lambda: len(receiver.at("/ping/tui")) == 1, what="success")
            assert tree.selected == {}
            await app.close_all()
        events = _events(receiver, 2)
        starts, successes = receiver.at("/ping/tui/start"), receiver.at("/ping/tui")
        everything_sent = receiver.all_bodies()

    # One run: START, then COMPLETE once both files landed, under the CLI's job name.
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    (run_id,) = {e["run"]["runId"] for e in events}
    assert {e["job"]["name"] for e in events} == {f"copy:s3://{bucket}/in/"}
    complete = events[1]
    namespace = f"sftp://{embedded_sftp.host}:{embedded_sftp.port}"
    assert sorted((d["namespace"], d["name"]) for d in complete["inputs"]) == [
        (namespace, "/data/big.bin"),
        (namespace, "/data/small.csv"),
    ]
    outputs = {d["name"]: d for d in complete["outputs"]}
    assert set(outputs) == {"in/big.bin", "in/small.csv"}
    assert {d["namespace"] for d in outputs.values()} == {f"s3://{bucket}"}
    for key, data in (("in/big.bin", big), ("in/small.csv", small)):
        facet = outputs[key]["facets"]["sftpS3File"]
        head = s3.head_object(Bucket=bucket, Key=key)
        assert facet["size"] == data.size and facet["sha256"] == data.sha256
        assert facet["etag"] == head["ETag"]
        assert facet["verifiedBy"] and facet["hostKeyFingerprint"]
        assert facet["status"] == "done"
    inputs = {d["name"]: d for d in complete["inputs"]}
    assert inputs["/data/small.csv"]["facets"]["sftpS3File"]["sha256"] == small.sha256

    # The profile's hook: /start, then the URL itself, with the run id and the counts.
    assert [r.query for r in starts] == [f"rid={run_id}"]
    assert [r.query for r in successes] == [f"rid={run_id}"]
    body = successes[0].json()
    assert body["event"] == "success" and body["copied"] == 2 and body["failed"] == 0
    assert body["dest"] == f"s3://{bucket}/in/"

    assert embedded_sftp.password not in everything_sent
    assert aws_secret not in everything_sent


async def test_a_tui_copy_whose_file_vanished_is_a_fail_run_and_a_fail_ping(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_secret: str,
) -> None:
    """The user plans a copy of two files; one is deleted on the server before they confirm.
    The other lands; the run ends FAIL naming the missing file, listing the landed one."""
    kept = embedded_sftp.write_file("data/kept.csv", b"id\n1\n")
    embedded_sftp.write_file("data/vanishing.csv", b"id\n2\n")
    assert embedded_sftp.password
    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
        profile = replace(profile, notify=NotifySettings(hook_url=f"{receiver.url}/ping/tui"))
        app = make_app(tmp_path, initial=profile)
        async with app.run_test(size=(150, 45)) as pilot:
            await _open_data_folder(pilot, app, 2)
            await pilot.press("down", "space", "down", "space", "C")  # plan the copy
            await wait_for(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
            (embedded_sftp.root / "data/vanishing.csv").unlink()
            await pilot.press("y")
            await wait_for(pilot, lambda: len(receiver.at(LINEAGE)) == 2, timeout=60)
            await wait_for(pilot, lambda: receiver.at("/ping/tui/fail"), what="the fail ping")
            await app.close_all()
        events = _events(receiver, 2)
        fails = receiver.at("/ping/tui/fail")
        everything_sent = receiver.all_bodies()

    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    fail = events[1]
    assert [d["name"] for d in fail["inputs"]] == ["/data/kept.csv"]
    assert [d["name"] for d in fail["outputs"]] == ["in/kept.csv"]
    assert fail["outputs"][0]["facets"]["sftpS3File"]["sha256"] == kept.sha256
    message = fail["run"]["facets"]["errorMessage"]["message"]
    assert "1 of 2 file(s) failed" in message and "vanishing.csv" in message
    assert s3.get_object(Bucket=bucket, Key="in/kept.csv")["Body"].read() == b"id\n1\n"
    (ping,) = fails
    body = ping.json()
    assert body["event"] == "fail" and body["failed"] == 1 and body["copied"] == 1
    assert receiver.at("/ping/tui") == []  # no success ping
    assert embedded_sftp.password not in everything_sent
    assert aws_secret not in everything_sent


async def test_each_poll_of_a_tui_watch_is_a_lineage_run(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_secret: str,
) -> None:
    server = openssh_sftp
    dropped = server.write_file("drop/orders.csv", b"id\n1\n")
    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="in/")
        app = make_app(tmp_path, initial=profile)
        async with app.run_test(size=(150, 45)) as pilot:
            await wait_for(pilot, lambda: browse_ready(app), what="browse")
            browse = app.screen
            tree = browse.query_one(RemoteTree)
            tree.table.move_cursor(row=tree.table.get_row_index(server.remote_path("drop")))
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, WatchDialog), what="dialog")
            await wait_for(pilot, lambda: bool(app.screen.query("#watch-every")))
            app.screen.query_one("#watch-every", Input).value = "0.3s"
            await pilot.press("ctrl+o")
            session = app.session
            assert session is not None
            await wait_for(pilot, lambda: session.watches.active, what="a running watch")
            (running,) = session.watches.active
            await wait_for(pilot, lambda: running.status.polls >= 2, timeout=60, what="polls")
            await running.stop()
            await app.close_all()
        events = [r.json() for r in receiver.at(LINEAGE)]

    runs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event)
    assert len(runs) >= 2  # one run per poll
    for run in runs.values():
        assert [e["eventType"] for e in run] == ["START", "COMPLETE"]
        assert {e["job"]["name"] for e in run} == {f"watch:s3://{bucket}/in/"}
        assert run[0]["job"]["facets"]["jobType"]["jobType"] == "WATCH_POLL"
    first = next(iter(runs.values()))[1]  # the poll that shipped the file
    namespace = f"sftp://{server.host}:{server.port}"
    assert [(d["namespace"], d["name"]) for d in first["inputs"]] == [
        (namespace, server.remote_path("drop/orders.csv"))
    ]
    (output,) = first["outputs"]
    assert (output["namespace"], output["name"]) == (f"s3://{bucket}", "in/drop/orders.csv")
    facet = output["facets"]["sftpS3File"]
    assert facet["sha256"] == dropped.sha256 and facet["size"] == dropped.size
    assert all(not run[1]["outputs"] for run in list(runs.values())[1:])  # nothing new later
    assert aws_secret not in "\n".join(str(e) for e in events)


def test_the_tuis_observers_do_not_import_openlineage_when_unconfigured(tmp_path: Path) -> None:
    """Start-up stays quick: a TUI copy's observers load the client only when asked."""
    probe = (
        "import sys, asyncio\n"
        "from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions\n"
        "from sftp_s3_tui.ui.app import SftpS3App\n"
        "from sftp_s3_tui.ui.session import Session, Target\n"
        "async def main():\n"
        "    target = Target('t', SftpEndpoint(host='h'), S3Endpoint(), TransferOptions())\n"
        "    session = Session(target)\n"
        "    session._copy([])  # a copy action's run: START, COMPLETE\n"
        "    await asyncio.gather(*session._copies)\n"
        "asyncio.run(main())\n"
        "print('openlineage' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.stdout.strip() == "False", done.stderr


async def test_a_tui_watchs_late_drop_fires_the_profiles_late_hook_once(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """Two invoices are due by 06:00 Berlin time and one came: after six, the profile's hook
    hears ``late`` once (not again at each later poll), and nothing else (notify_on late)."""
    server = openssh_sftp
    server.write_file("drop/invoice_1.csv", b"n\n1\n")
    clock = {"now": datetime(2026, 12, 7, 5, 0, tzinfo=ZoneInfo("Europe/Berlin"))}
    with http_receiver() as receiver:
        profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="in/")
        notify = NotifySettings(hook_url=f"{receiver.url}/ping/drop", notify_on="late")
        app = make_app(tmp_path, initial=replace(profile, notify=notify))
        async with app.run_test(size=(170, 45)) as pilot:
            await wait_for(pilot, lambda: browse_ready(app), what="browse")
            session = app.session
            assert session is not None
            session.watches.clock = lambda: clock["now"]
            tree = app.screen.query_one(RemoteTree)
            tree.table.move_cursor(row=tree.table.get_row_index(server.remote_path("drop")))
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, WatchDialog), what="dialog")
            await wait_for(pilot, lambda: bool(app.screen.query("#watch-expect")))
            app.screen.query_one("#watch-every", Input).value = "0.3s"
            app.screen.query_one(
                "#watch-expect", Input
            ).value = "2 invoice_*.csv by weekdays 06:00 Europe/Berlin"
            await pilot.press("ctrl+o")
            await wait_for(pilot, lambda: session.watches.active, what="a running watch")
            (running,) = session.watches.active
            await wait_for(pilot, lambda: running.status.shipped == 1, timeout=30)
            clock["now"] = datetime(2026, 12, 7, 6, 1, tzinfo=ZoneInfo("Europe/Berlin"))
            await wait_for(pilot, lambda: receiver.at("/ping/drop/fail"), what="the late ping")
            polls = running.status.polls
            await wait_for(pilot, lambda: running.status.polls >= polls + 3, what="more polls")
            await running.stop()
            await app.close_all()
        everything = [(r.path, r.json()) for r in receiver.requests]

    assert [path for path, _ in everything] == ["/ping/drop/fail"]
    body = everything[0][1]
    assert body["event"] == "late" and body["drop"] == "invoice_*.csv"
    assert body["expected"] == 2 and body["arrived"] == 1 and body["missing"] == 1


async def test_a_tui_retry_is_a_new_lineage_run_with_its_own_hooks(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_secret: str,
) -> None:
    """A planned file vanishes before the copy (FAIL run, fail ping); the partner puts it
    back and the user retries it: a second run of the same job, START then COMPLETE with
    the file, and its own start and success pings."""
    embedded_sftp.write_file("data/late.csv", b"id\n1\n")
    assert embedded_sftp.password
    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
        profile = replace(profile, notify=NotifySettings(hook_url=f"{receiver.url}/ping/tui"))
        app = make_app(tmp_path, initial=profile)
        async with app.run_test(size=(150, 45)) as pilot:
            await _open_data_folder(pilot, app, 1)
            await pilot.press("down", "space", "C")  # plan the copy
            await wait_for(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
            (embedded_sftp.root / "data/late.csv").unlink()
            await pilot.press("y")
            await wait_for(pilot, lambda: receiver.at("/ping/tui/fail"), what="the fail ping")
            back = embedded_sftp.write_file("data/late.csv", b"id\n1\n2\n")
            session = app.session
            assert session is not None
            (transfer,) = session.queue.transfers.values()
            await pilot.press("t", "r")  # focus the queue, retry the failed transfer
            await wait_for(pilot, lambda: len(receiver.at(LINEAGE)) == 4, timeout=60)
            await wait_for(pilot, lambda: receiver.at("/ping/tui"), what="the success ping")
            assert transfer.state is TransferState.DONE
            await app.close_all()
        events = _events(receiver, 4)
        pings = [(r.path, r.query) for r in receiver.requests if r.path.startswith("/ping")]
        everything_sent = receiver.all_bodies()

    first, second = events[:2], events[2:]
    assert [e["eventType"] for e in first] == ["START", "FAIL"]
    assert [e["eventType"] for e in second] == ["START", "COMPLETE"]
    (first_id,) = {e["run"]["runId"] for e in first}
    (second_id,) = {e["run"]["runId"] for e in second}
    assert first_id != second_id
    assert {e["job"]["name"] for e in events} == {f"copy:s3://{bucket}/in/late.csv"}
    (output,) = second[1]["outputs"]
    assert output["name"] == "in/late.csv"
    assert output["facets"]["sftpS3File"]["sha256"] == back.sha256
    assert pings == [
        ("/ping/tui/start", f"rid={first_id}"),
        ("/ping/tui/fail", f"rid={first_id}"),
        ("/ping/tui/start", f"rid={second_id}"),
        ("/ping/tui", f"rid={second_id}"),
    ]
    assert s3.get_object(Bucket=bucket, Key="in/late.csv")["Body"].read() == b"id\n1\n2\n"
    assert embedded_sftp.password not in everything_sent
    assert aws_secret not in everything_sent


async def test_transfers_resumed_at_start_up_are_a_lineage_run_with_hooks(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_secret: str,
) -> None:
    """An upload cut by a crash is offered at start-up; resuming it is a run like a copy:
    START, COMPLETE with the file, and the start and success pings."""
    remote = embedded_sftp.write_file("big.bin", size=12 * MiB + 1, seed=9)
    stat = remote.local_path.stat()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="resumed/big.bin")
    source = f"sftp://{embedded_sftp.password_user}@{embedded_sftp.host}:{embedded_sftp.port}"
    journal = Journal(tmp_path / "journal")
    records = journal.for_endpoint(
        endpoint_identity(s3_endpoint.endpoint_url), account_identity(s3_endpoint.access_key_id)
    )
    with records.claim(bucket, "resumed/big.bin") as claim:
        entry = claim.new_entry(
            f"{source}/big.bin", upload["UploadId"], 8 * MiB, stat.st_size, int(stat.st_mtime)
        )
        claim.start(entry).close()  # as if the app had crashed right after starting it
    assert embedded_sftp.password
    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket)
        profile = replace(profile, notify=NotifySettings(hook_url=f"{receiver.url}/ping/tui"))
        app = make_app(tmp_path, initial=profile)
        async with app.run_test(size=(150, 45)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="offer")
            await pilot.press("y")
            await wait_for(pilot, lambda: len(receiver.at(LINEAGE)) == 2, timeout=60)
            await wait_for(pilot, lambda: receiver.at("/ping/tui"), what="the success ping")
            await app.close_all()
        events = _events(receiver, 2)
        pings = [r.path for r in receiver.requests if r.path.startswith("/ping")]
        success = receiver.at("/ping/tui")[0].json()
        everything_sent = receiver.all_bodies()

    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["job"]["name"] for e in events} == {f"copy:s3://{bucket}/resumed/big.bin"}
    (output,) = events[1]["outputs"]
    assert (output["namespace"], output["name"]) == (f"s3://{bucket}", "resumed/big.bin")
    assert output["facets"]["sftpS3File"]["sha256"] == remote.sha256
    assert pings == ["/ping/tui/start", "/ping/tui"]
    assert success["command"] == "resume" and success["copied"] == 1
    assert embedded_sftp.password not in everything_sent
    assert aws_secret not in everything_sent
