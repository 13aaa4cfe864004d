"""The Airflow operator's ``expect``, without Airflow: one task run is the pickup of the drop
due at the last deadline before it ends; its matching files are that drop's arrivals."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sftp_s3_tui.airflow.drops import check_run_drops, late_message, parse_expect
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.observe.options import ObserveOptions
from sftp_s3_tui.observe.session import Observers

BERLIN = ZoneInfo("Europe/Berlin")


def observers(expect: str | list[str], now: datetime) -> Observers:
    options = ObserveOptions(expectations=parse_expect(expect))
    return Observers(options, job_name="t", lineage=False, clock=lambda: now)


def test_a_run_after_the_deadline_with_a_file_missing_is_late() -> None:
    now = datetime(2026, 12, 7, 6, 5, tzinfo=BERLIN)  # Monday, five past the deadline
    watchers = observers("3 invoice_*.csv by weekdays 06:00 Europe/Berlin", now)

    statuses, late = check_run_drops(
        watchers, ["/in/invoice_1.csv", "/in/invoice_2.csv", "/in/notes.txt"]
    )

    (status,) = statuses
    assert status.deadline == datetime(2026, 12, 7, 6, 0, tzinfo=BERLIN)
    assert (status.expected, status.arrived, status.missing) == (3, 2, 1)
    assert late == [status]
    assert late_message(late) == "drop late: invoice_*.csv: 2/3 by Mon 06:00 CET (1 missing)"


def test_a_complete_drop_is_not_late_and_monday_checks_fridays_deadline() -> None:
    now = datetime(2026, 12, 7, 5, 0, tzinfo=BERLIN)  # Monday before six: Friday's drop
    watchers = observers(["1 orders.csv by weekdays 06:00 Europe/Berlin"], now)

    statuses, late = check_run_drops(watchers, ["/in/orders.csv"])

    assert late == []
    (status,) = statuses
    assert status.deadline == datetime(2026, 12, 4, 6, 0, tzinfo=BERLIN)
    assert (status.arrived, status.missing) == (1, 0)


@pytest.mark.parametrize("bad", ["invoice_*.csv", ["3 a.csv by 25:00"], [""]])
def test_a_bad_expect_is_one_clear_line(bad: str | list[str]) -> None:
    with pytest.raises(UsageError):
        parse_expect(bad)
