"""Save SVG screenshots of every screen from the demo: ``python -m sftp_s3_tui.ui.screenshots``.

Runs the real app headless against the demo servers, drives it with a Pilot like a user would
(select files, copy, watch), and saves ``connect``, ``browse``, ``transfers`` (mid-transfer, the
wide combined view and the narrow transfers screen), a transfer's ``detail``, ``help``, the
copy ``plan``, the ``connection-details`` (store check and SFTP link) and the host key dialog;
then browse, plan and transfers again at 80x24, the default terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.errors import HostKeyError
from ..engine.events import TransferState
from ..profiles import Profile, ProfileStore, S3Settings, SftpAuth, SftpSettings
from .app import AppOptions, SftpS3App
from .screens.browse import BrowseScreen
from .screens.connection_details import ConnectionDetailsScreen
from .screens.detail import TransferDetailScreen
from .screens.host_key import HostKeyScreen
from .screens.plan import PlanScreen
from .screens.transfers import TransfersScreen
from .widgets.bucket_picker import BucketPicker
from .widgets.remote_tree import RemoteTree

WIDE = (150, 44)
NARROW = (100, 32)
SMALL = (80, 24)  # the default terminal
SUBTITLE = "demo: sftp://demo@127.0.0.1:2222 → s3 (http://127.0.0.1:9000)"


async def _until(pilot: Any, condition: Callable[[], object], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshot script: timed out on {pilot.app.screen!r}")
        await pilot.pause(0.05)


def _save(app: SftpS3App, folder: Path, name: str) -> None:
    path = app.save_screenshot(filename=f"{name}.svg", path=str(folder))
    print(f"saved {path}")


async def connect_screen(folder: Path, tmp: Path) -> None:
    store = ProfileStore(tmp / "profiles.toml")
    store.save(
        Profile(
            name="partner-drop",
            sftp=SftpSettings(
                host="sftp.partner.example",
                user="etl",
                auth=SftpAuth.KEY,
                key_file="~/.ssh/id_ed25519",
                remote_folder="/outgoing",
            ),
            s3=S3Settings(aws_profile="data", region="eu-west-1", bucket="landing", prefix="in/"),
        )
    )
    store.save(
        Profile(
            name="minio-lab",
            sftp=SftpSettings(host="10.0.0.7", port=2222, user="lab"),
            s3=S3Settings(endpoint_url="http://minio:9000", path_style=True, bucket="raw"),
        )
    )
    app = SftpS3App(AppOptions(journal_dir=None, read_user_config=False, profiles_path=store.path))
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.3)
        _save(app, folder, "connect")
        await app.push_screen(
            HostKeyScreen(
                HostKeyError(
                    "unknown",
                    "",
                    host="sftp.partner.example",
                    port=22,
                    fingerprint="ssh-ed25519 SHA256:Xq0t9I3w2m9QmKx8JvEo0zXh4Jm3dXl1rDkqB3l6P2E",
                )
            )
        )
        await pilot.pause(0.3)
        _save(app, folder, "host-key")


def _demo_app(profiles_path: Path) -> SftpS3App:
    """The demo as the screenshots show it: a fixed subtitle, no journal, no user config."""
    return SftpS3App(
        AppOptions(
            demo=True,
            subtitle=SUBTITLE,
            journal_dir=None,
            read_user_config=False,
            profiles_path=profiles_path,
        )
    )


async def _browsing(pilot: Any, app: SftpS3App) -> None:
    """Until the demo has connected and the browse screen shows its SFTP tree."""
    await _until(
        pilot,
        lambda: isinstance(app.screen, BrowseScreen) and bool(app.screen.query(RemoteTree)),
    )


async def demo_screens(folder: Path, tmp: Path) -> None:
    app = _demo_app(tmp / "demo-profiles.toml")
    async with app.run_test(size=WIDE) as pilot:
        await _browsing(pilot, app)
        screen = app.screen
        tree = screen.query_one(RemoteTree)
        picker = screen.query_one(BucketPicker)
        await _until(pilot, lambda: tree.entries and tree.ready)
        await _until(pilot, lambda: len(list(picker.s3_tree.root.children)) == 2)
        # rows: .., logs/, customers_2026.csv, empty.csv, orders 2026-11.csv, README, parquet
        await pilot.press("down", "down", "space", "down", "space", "down", "space")
        await pilot.pause(0.5)
        _save(app, folder, "browse")
        await pilot.press("c")
        session = app.session
        assert session is not None

        def mid_transfer() -> bool:
            for stats in session.sampler.latest.transfers:
                if stats.key.endswith("customers_2026.csv"):
                    return 0.35 < stats.fraction_done < 0.9
            return False

        await _until(pilot, mid_transfer)
        await pilot.pause(0.3)
        _save(app, folder, "transfers-wide")
        await app.push_screen(TransfersScreen(session))
        await pilot.pause(0.5)
        _save(app, folder, "transfers")
        await _until(
            pilot,
            lambda: all(t.state.finished for t in session.queue.transfers.values()),
        )
        await pilot.pause(0.5)
        assert all(t.state is TransferState.DONE for t in session.queue.transfers.values())
        _save(app, folder, "transfers-done")
        await pilot.press("enter")  # everything about the focused transfer
        await _until(pilot, lambda: isinstance(app.screen, TransferDetailScreen))
        await pilot.pause(0.3)
        _save(app, folder, "detail")
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, TransfersScreen))
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.3)
        _save(app, folder, "help")
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, BrowseScreen))
        # the same files again: they exist now, so the plan asks what to do with them
        await pilot.press("a", "C")
        await _until(pilot, lambda: isinstance(app.screen, PlanScreen))
        await pilot.pause(0.3)
        _save(app, folder, "plan")
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, BrowseScreen))
        await pilot.press("i")  # what the store was found to check, and the SFTP link
        await _until(
            pilot,
            lambda: (
                isinstance(app.screen, ConnectionDetailsScreen)
                and "Store check:" in app.screen.text
            ),
        )
        await pilot.pause(0.3)
        _save(app, folder, "connection-details")
        await pilot.press("escape")
        await app.close_all()


async def small_screens(folder: Path, tmp: Path) -> None:
    """The default terminal (80x24): browse, the plan and the transfers screen mid-copy."""
    app = _demo_app(tmp / "small-profiles.toml")
    async with app.run_test(size=SMALL) as pilot:
        await _browsing(pilot, app)
        tree = app.screen.query_one(RemoteTree)
        await _until(pilot, lambda: tree.entries and tree.ready)
        await pilot.press("down", "down", "space", "down", "space", "down", "space")
        await pilot.pause(0.5)
        _save(app, folder, "browse-80x24")
        await pilot.press("C")
        await _until(pilot, lambda: isinstance(app.screen, PlanScreen))
        await pilot.pause(0.3)
        _save(app, folder, "plan-80x24")
        await pilot.press("y")
        session = app.session
        assert session is not None

        def mid_transfer() -> bool:
            for stats in session.sampler.latest.transfers:
                if stats.key.endswith("customers_2026.csv"):
                    return 0.35 < stats.fraction_done < 0.9
            return False

        await _until(pilot, mid_transfer)
        await pilot.press("t")
        await _until(pilot, lambda: isinstance(app.screen, TransfersScreen))
        await pilot.pause(0.5)
        _save(app, folder, "transfers-80x24")
        await app.close_all()


async def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sftp-s3-shots-") as tmp:
        await connect_screen(folder, Path(tmp))
        await demo_screens(folder, Path(tmp))
        await small_screens(folder, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", default="screenshots", type=Path)
    asyncio.run(main(parser.parse_args().folder))
