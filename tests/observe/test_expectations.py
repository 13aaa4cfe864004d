"""Drop expectations as a user writes them: deadlines in the partner's time zone (daylight
saving time included), late files completing a drop, and one clear line for a bad value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.observe.expectations import DropTracker, Expectation
from tests.support.cli import run_cli

BERLIN = ZoneInfo("Europe/Berlin")


def test_weekdays_at_six_berlin_follows_daylight_saving_time() -> None:
    invoices = Expectation.build("invoice_*.csv", 3, "weekdays 06:00", "Europe/Berlin")
    assert invoices.cron == "0 6 * * 1-5"
    # Friday 27 March 2026 06:00 is CET (05:00 UTC); Monday 30 March is CEST (04:00 UTC).
    friday_night = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    monday = invoices.next_deadline(friday_night)
    assert monday.astimezone(UTC) == datetime(2026, 3, 30, 4, 0, tzinfo=UTC)
    assert invoices.previous_deadline(friday_night).astimezone(UTC) == datetime(
        2026, 3, 27, 5, 0, tzinfo=UTC
    )


def test_three_invoices_one_late_one_missing() -> None:
    tracker = DropTracker(Expectation.build("invoice_*.csv", 3, "06:00", "Europe/Berlin"))
    at = datetime(2026, 12, 7, 5, 0, tzinfo=BERLIN)
    tracker.start(at)
    assert tracker.arrived("/drop/invoice_1.csv", at)
    assert not tracker.arrived("/drop/notes.txt", at)  # not part of the drop
    assert tracker.check(at) == []
    status = tracker.status(at)
    assert (status.expected, status.arrived, status.late, status.missing) == (3, 1, 0, 0)

    past = datetime(2026, 12, 7, 6, 0, tzinfo=BERLIN)  # the deadline itself: due now
    (late,) = tracker.check(past)
    assert (late.arrived, late.missing) == (1, 2)
    assert tracker.check(past) == []  # once per deadline
    tracker.arrived("/drop/invoice_2.csv", datetime(2026, 12, 7, 7, 0, tzinfo=BERLIN))
    status = tracker.status(datetime(2026, 12, 7, 7, 0, tzinfo=BERLIN))
    assert (status.arrived, status.late, status.missing) == (2, 1, 1)
    assert status.line() == "invoice_*.csv: 2/3 by Mon 06:00 CET (1 missing, 1 late)"


@pytest.mark.parametrize(
    ("by", "tz", "count", "message"),
    [
        ("25:00", "UTC", 1, "--expect-by '25:00' is not a deadline"),
        ("0 6 * *", "UTC", 1, "--expect-by '0 6 * *' is not a deadline"),
        ("06:00", "Mars/Olympus", 1, "--expect-tz 'Mars/Olympus' is not a time zone"),
        ("06:00", "UTC", "0", "--expect-count '0' is not a positive number"),
    ],
)
def test_a_bad_expectation_is_one_clear_line(by: str, tz: str, count: object, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        Expectation.build("invoice_*.csv", count, by, tz)  # type: ignore[arg-type]
    assert raised.value.message == message


def test_the_cli_says_what_is_wrong_with_an_expectation() -> None:
    done = run_cli(
        "watch",
        "sftp://127.0.0.1:1/drop/",
        "s3://bucket/in/",
        "--expect",
        "invoice_*.csv",
        "--expect-by",
        "weekdays 6am",
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sftp-s3-tui: error: --expect-by 'weekdays 6am' is not a deadline — give HH:MM, "
        "'weekdays HH:MM' or a cron expression like '0 6 * * 1-5'"
    ]


def test_a_profile_keeps_its_notify_table_and_names_a_bad_expectation(tmp_path: Path) -> None:
    from sftp_s3_tui.profiles import NotifySettings, Profile, ProfileStore, SftpSettings

    store = ProfileStore(tmp_path / "profiles.toml")
    notify = NotifySettings(
        hook_url="https://hc-ping.example/abc",
        notify_on="late,fail",
        expect=("3 invoice_*.csv by weekdays 06:00 Europe/Berlin",),
    )
    store.save(Profile(name="partner", sftp=SftpSettings(host="sftp.example"), notify=notify))
    assert store.load().profiles["partner"].notify == notify
    text = (tmp_path / "profiles.toml").read_text()
    assert '"3 invoice_*.csv by weekdays 06:00 Europe/Berlin"' in text

    (tmp_path / "profiles.toml").write_text(
        text.replace("weekdays 06:00 Europe/Berlin", "weekdays 6am")
    )
    (problem,) = ProfileStore(tmp_path / "profiles.toml").load().problems
    assert "notify.expect" in str(problem) and "is not a deadline" in str(problem)
