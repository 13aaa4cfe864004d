"""The partner's invoices are due on weekdays by 06:00 Berlin time. One of the two comes on
time; at 06:00 the monitor is told once that the drop is late (not at every poll after),
the gauges say what is missing, and the straggler still completes the drop, as late."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sftp_s3_tui.cli.run import run_watch
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.nightly.watch import PollReport
from sftp_s3_tui.requests import (
    ConnectionFlags,
    ObserveFlags,
    TransferFlags,
    copy_request,
)
from tests.support.cli import source_url
from tests.support.metrics import metric_value
from tests.support.receiver import Receiver, http_receiver
from tests.support.servers import PushGateway, SftpServerInfo
from tests.support.transfers import keys

BERLIN = ZoneInfo("Europe/Berlin")


class StepClock:
    """The watch's clock, moved by the test (never the wall clock)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def until(condition: Any, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def late_pings(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.at("/ping/invoices/fail")]


async def test_a_late_drop_fires_one_alert_per_deadline(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: PushGateway,
    tmp_path: Path,
) -> None:
    openssh_sftp.write_file("drop/invoice_1.csv", b"n,total\n1,10\n")
    openssh_sftp.write_file("drop/readme.txt", b"not an invoice\n")
    clock = StepClock(datetime(2026, 12, 7, 5, 0, tzinfo=BERLIN))  # a Monday, 05:00
    polls: list[PollReport] = []
    stop = asyncio.Event()
    assert s3_endpoint.endpoint_url

    with http_receiver() as receiver:
        request = copy_request(
            [source_url(openssh_sftp, "drop/"), f"s3://{bucket}/invoices/"],
            ConnectionFlags(
                identity=(str(openssh_sftp.identity_file),),
                known_hosts=str(openssh_sftp.known_hosts),
                no_agent=True,
                endpoint_url=s3_endpoint.endpoint_url,
                push_gateway=fresh_pushgateway.url,
            ),
            TransferFlags(),
            {},
            quiet=True,
            watch_every="1s",
            observe=ObserveFlags(
                hook_url=f"{receiver.url}/ping/invoices",
                notify_on="late",
                expect="invoice_*.csv",
                expect_count="2",
                expect_by="weekdays 06:00",
                expect_tz="Europe/Berlin",
            ),
        )
        request = replace(request, watch_every_seconds=0.05)
        watching = asyncio.create_task(
            run_watch(request, stop, clock=clock, after_poll=polls.append)
        )
        try:
            await until(lambda: "invoices/invoice_1.csv" in keys(s3, bucket) and len(polls) >= 2)
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

            openssh_sftp.write_file("drop/invoice_2.csv", b"n,total\n2,20\n")  # the straggler
            clock.now = datetime(2026, 12, 7, 6, 30, tzinfo=BERLIN)
            await until(lambda: "invoices/invoice_2.csv" in keys(s3, bucket))
            seen = len(polls)
            await until(lambda: len(polls) >= seen + 2)
            assert len(late_pings(receiver)) == 1
        finally:
            stop.set()
            await watching
        # Only late was asked for: no start / success pings.
        assert {r.path for r in receiver.requests} == {"/ping/invoices/fail"}

    metrics = fresh_pushgateway.metrics_text()
    assert drop_gauge(metrics, "expected") == 2
    assert drop_gauge(metrics, "arrived") == 2
    assert drop_gauge(metrics, "late") == 1
    assert drop_gauge(metrics, "missing") == 0


def drop_gauge(metrics: str, which: str) -> float:
    """The pushed ``sftp_s3_drop_<which>_files`` of the invoice drop."""
    invoices = [
        line
        for line in metrics.splitlines()
        if line.startswith(f"sftp_s3_drop_{which}_files{{") and 'drop="invoice_*.csv"' in line
    ]
    assert len(invoices) == 1, invoices
    return metric_value(invoices[0], f"sftp_s3_drop_{which}_files")


async def test_the_next_deadline_unmet_is_a_second_alert(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    """Tuesday's drop never comes: Monday's alert does not hide Tuesday's."""
    clock = StepClock(datetime(2026, 12, 7, 5, 0, tzinfo=BERLIN))
    polls: list[PollReport] = []
    stop = asyncio.Event()
    assert s3_endpoint.endpoint_url
    openssh_sftp.write_file("drop/other.csv", b"x\n")
    with http_receiver() as receiver:
        request = copy_request(
            [source_url(openssh_sftp, "drop/"), f"s3://{bucket}/in/"],
            ConnectionFlags(
                identity=(str(openssh_sftp.identity_file),),
                known_hosts=str(openssh_sftp.known_hosts),
                no_agent=True,
                endpoint_url=s3_endpoint.endpoint_url,
            ),
            TransferFlags(),
            {},
            quiet=True,
            json=True,
            observe=ObserveFlags(
                hook_url=f"{receiver.url}/ping/invoices",
                expect="invoice_*.csv",
                expect_by="0 6 * * 1-5",
                expect_tz="Europe/Berlin",
            ),
        )
        request = replace(request, watch_every_seconds=0.05)
        watching = asyncio.create_task(
            run_watch(request, stop, clock=clock, after_poll=polls.append)
        )
        try:
            await until(lambda: len(polls) >= 1)  # watching since Monday 05:00
            for day in (7, 8):  # Monday, then Tuesday, each past 06:00
                clock.now = datetime(2026, 12, day, 6, 5, tzinfo=BERLIN)
                seen = len(polls)
                await until(lambda seen=seen: len(polls) >= seen + 3)
        finally:
            stop.set()
            await watching
        late = [r.json() for r in receiver.at("/ping/invoices/fail") if "drop" in r.json()]
    assert [p["deadline"] for p in late] == [
        "2026-12-07T06:00:00+01:00",
        "2026-12-08T06:00:00+01:00",
    ]
    assert all(p["missing"] == 1 and p["arrived"] == 0 for p in late)
    assert json.dumps(late)  # plain JSON bodies
