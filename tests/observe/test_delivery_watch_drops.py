"""Our export job must put the partner's two invoices under ``s3://…/out/`` by 06:00 Berlin
time on weekdays; a delivery watch sends them on to the partner's SFTP. One comes on time;
at 06:00 on-call is told once that the drop is late (not at every poll after), the gauges
(labelled ``direction="s3_to_sftp"``) say what is missing, and the straggler still completes
the drop, as late. The same flags as the SFTP → S3 watch, the same clock the test moves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from sftp_s3_tui.cli.delivery_watch import run_delivery_watch
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.nightly.delivery_watch import DeliveryPollReport
from sftp_s3_tui.requests import ConnectionFlags, ObserveFlags, TransferFlags
from sftp_s3_tui.requests.delivery import DeliveryRequest, delivery_request
from tests.observe.test_watch_drops import BERLIN, StepClock, late_pings, until
from tests.support.cli import run_cli
from tests.support.delivery import files_under, target_url
from tests.support.metrics import metric_value
from tests.support.receiver import http_receiver
from tests.support.servers import PushGateway, SftpServerInfo


def flags(server: SftpServerInfo, s3_endpoint: S3Endpoint, **more: Any) -> ConnectionFlags:
    assert s3_endpoint.endpoint_url
    return ConnectionFlags(
        identity=(str(server.identity_file),),
        known_hosts=str(server.known_hosts),
        no_agent=True,
        endpoint_url=s3_endpoint.endpoint_url,
        **more,
    )


def invoice_watch(
    server: SftpServerInfo,
    connection: ConnectionFlags,
    bucket: str,
    hook_url: str,
    *,
    expect_by: str,
    notify_on: str | None = None,
    json: bool = False,
) -> DeliveryRequest:
    """``watch s3://bucket/out/ sftp://…/partner/`` expecting two ``invoice_*.csv`` by
    ``expect_by`` (Berlin time), pinging ``hook_url``; polled every 50 ms."""
    request = delivery_request(
        [f"s3://{bucket}/out/", target_url(server, "partner/")],
        connection,
        TransferFlags(),
        {},
        quiet=True,
        json=json,
        watch_every="1s",
        observe=ObserveFlags(
            hook_url=hook_url,
            notify_on=notify_on,
            expect="invoice_*.csv",
            expect_count="2",
            expect_by=expect_by,
            expect_tz="Europe/Berlin",
        ),
    )
    return replace(request, watch_every_seconds=0.05)


def drop_gauge(metrics: str, which: str) -> tuple[str, float]:
    """The pushed ``sftp_s3_drop_<which>_files`` of the invoice drop: (the line, its value)."""
    invoices = [
        line
        for line in metrics.splitlines()
        if line.startswith(f"sftp_s3_drop_{which}_files{{") and 'drop="invoice_*.csv"' in line
    ]
    assert len(invoices) == 1, invoices
    return invoices[0], metric_value(invoices[0], f"sftp_s3_drop_{which}_files")


@pytest.mark.all_stores
async def test_a_late_delivery_drop_fires_one_alert_and_the_straggler_completes_it(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: PushGateway,
) -> None:
    s3.put_object(Bucket=bucket, Key="out/2026-12-07/invoice_1.csv", Body=b"n,total\n1,10\n")
    s3.put_object(Bucket=bucket, Key="out/readme.txt", Body=b"not an invoice\n")
    clock = StepClock(datetime(2026, 12, 7, 5, 0, tzinfo=BERLIN))  # a Monday, 05:00
    polls: list[DeliveryPollReport] = []
    stop = asyncio.Event()
    folder = openssh_sftp.root / "partner"

    with http_receiver() as receiver:
        request = invoice_watch(
            openssh_sftp,
            flags(openssh_sftp, s3_endpoint, push_gateway=fresh_pushgateway.url),
            bucket,
            f"{receiver.url}/ping/invoices",
            expect_by="weekdays 06:00",
            notify_on="late",
        )
        watching = asyncio.create_task(
            run_delivery_watch(request, stop, clock=clock, after_poll=polls.append)
        )
        try:
            await until(
                lambda: "2026-12-07/invoice_1.csv" in files_under(folder) and len(polls) >= 2
            )
            assert late_pings(receiver) == []  # 05:00: not due yet

            clock.now = datetime(2026, 12, 7, 6, 1, tzinfo=BERLIN)  # the deadline has passed
            seen = len(polls)
            await until(lambda: len(polls) >= seen + 5)
            pings = late_pings(receiver)
            assert len(pings) == 1, pings  # once, not at each of the five polls
            (ping,) = pings
            assert ping["event"] == "late" and ping["drop"] == "invoice_*.csv"
            assert (ping["expected"], ping["arrived"], ping["missing"]) == (2, 1, 1)
            assert ping["deadline"] == "2026-12-07T06:00:00+01:00"

            # the straggler, at 06:30: it arrives, is delivered and completes the drop
            s3.put_object(Bucket=bucket, Key="out/invoice_2.csv", Body=b"n,total\n2,20\n")
            clock.now = datetime(2026, 12, 7, 6, 30, tzinfo=BERLIN)
            await until(lambda: "invoice_2.csv" in files_under(folder))
            seen = len(polls)
            await until(lambda: len(polls) >= seen + 2)
            assert len(late_pings(receiver)) == 1
        finally:
            stop.set()
            code = await watching
        # Only late was asked for: no start / success pings.
        assert {r.path for r in receiver.requests} == {"/ping/invoices/fail"}

    assert code == 0
    metrics = fresh_pushgateway.metrics_text()
    expected = {"expected": 2, "arrived": 2, "late": 1, "missing": 0}
    for which, value in expected.items():
        line, pushed = drop_gauge(metrics, which)
        assert pushed == value, line
        assert 'direction="s3_to_sftp"' in line, line


async def test_a_drop_counts_what_reached_the_partner_not_what_appeared(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both invoices appear under the prefix before 06:00 (one in a sub-folder: the key's
    base name is matched), but the second cannot be delivered (a file stands where its
    folder would go): ``--json``'s ``drops`` record counts one arrived, however often the
    delivery is tried, and at the deadline the late hook says one is missing — the partner
    does not have it. Once the way is clear it is delivered and completes the drop, late."""
    clock = StepClock(datetime(2026, 12, 7, 5, 0, tzinfo=BERLIN))
    polls: list[DeliveryPollReport] = []
    stop = asyncio.Event()
    folder = openssh_sftp.root / "partner"

    with http_receiver() as receiver:
        request = invoice_watch(
            openssh_sftp,
            flags(openssh_sftp, s3_endpoint),
            bucket,
            f"{receiver.url}/ping/invoices",
            expect_by="0 6 * * 1-5",
            json=True,
        )
        watching = asyncio.create_task(
            run_delivery_watch(request, stop, clock=clock, after_poll=polls.append)
        )
        try:
            await until(lambda: len(polls) >= 1)
            openssh_sftp.write_file("partner/sub", b"in the way\n")
            s3.put_object(Bucket=bucket, Key="out/invoice_1.csv", Body=b"1\n")
            s3.put_object(Bucket=bucket, Key="out/notes.csv", Body=b"not part of it\n")
            s3.put_object(Bucket=bucket, Key="out/sub/invoice_2.csv", Body=b"2\n")
            await until(lambda: sum(p.failed for p in polls) >= 3)  # three tries at least
            assert set(files_under(folder)) == {"invoice_1.csv", "notes.csv", "sub"}
            on_time = drops_records(capsys.readouterr().out)[-1]
            assert late_pings(receiver) and all(
                ping["event"] == "fail" for ping in late_pings(receiver)
            )  # the failed delivery's own pings, none late yet

            clock.now = datetime(2026, 12, 7, 6, 5, tzinfo=BERLIN)  # past the deadline
            seen = len(polls)
            await until(lambda: len(polls) >= seen + 3)
            late = [ping for ping in late_pings(receiver) if ping["event"] == "late"]
            assert len(late) == 1, late  # once, not at each poll
            assert (late[0]["expected"], late[0]["arrived"], late[0]["missing"]) == (2, 1, 1)

            (folder / "sub").unlink()  # the way is clear: the next poll delivers it
            await until(lambda: "sub/invoice_2.csv" in files_under(folder))
            seen = len(polls)
            await until(lambda: len(polls) >= seen + 2)
        finally:
            stop.set()
            assert await watching == 0
        after = drops_records(capsys.readouterr().out)[-1]
        late_after = [ping for ping in late_pings(receiver) if ping["event"] == "late"]

    assert (on_time["drop"], on_time["expected"], on_time["arrived"]) == ("invoice_*.csv", 2, 1)
    assert on_time["deadline"] == "2026-12-07T06:00:00+01:00"
    assert (after["arrived"], after["late"], after["missing"]) == (2, 1, 0)
    assert len(late_after) == 1  # completing it late tells nobody a second time


def drops_records(out: str) -> list[dict[str, Any]]:
    """The invoice drop of each ``{"drops": [...]}`` record the watch printed."""
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for r in records for d in r.get("drops", ()) if d["drop"] == "invoice_*.csv"]


def test_expect_without_a_deadline_is_one_line_exit_2(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    assert s3_endpoint.endpoint_url
    done = run_cli(
        "watch",
        f"s3://{bucket}/out/",
        target_url(openssh_sftp, "partner/"),
        "--endpoint-url",
        s3_endpoint.endpoint_url,
        "--expect",
        "invoice_*.csv",
        "--every",
        "1s",
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--expect needs --expect-by" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
