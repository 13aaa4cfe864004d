"""Helpers for driving the real app with a Pilot."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.css.query import NoMatches
from textual.pilot import Pilot

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import (
    ChecksumChoice,
    ConflictPolicy,
    HostKeyPolicy,
    KiB,
    MiB,
    S3Endpoint,
    SftpEndpoint,
    TransferOptions,
)
from sftp_s3_tui.engine.plan.conflicts import ExistingObject, decide
from sftp_s3_tui.engine.plan.preview import CopyPlan, plan_file
from sftp_s3_tui.engine.plan.sources import FileJob
from sftp_s3_tui.engine.s3.checksums import StoreCapabilities
from sftp_s3_tui.profiles import (
    Profile,
    S3Settings,
    Secret,
    SftpAuth,
    SftpSettings,
)
from sftp_s3_tui.ui.app import AppOptions, SftpS3App
from sftp_s3_tui.ui.screens.connection_details import (
    ConnectionInfo,
    LinkFigures,
    ServerLimits,
)
from sftp_s3_tui.ui.screens.dialogs import ErrorScreen
from sftp_s3_tui.ui.screens.plan import PlanScreen
from sftp_s3_tui.ui.widgets.bucket_picker import BucketPicker
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.support.servers import SftpServerInfo
from tests.ui.fake_data import fixed_rows, fixed_snapshot

SUBTITLE = "demo: sftp://demo@127.0.0.1:2222 → s3 (http://127.0.0.1:9000)"


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` is true; fail after ``timeout`` seconds.

    A condition that queries a widget of a screen just pushed may run before the screen has
    composed it: NoMatches there means "not yet", not a failure."""
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        if time.monotonic() > deadline:
            screen = pilot.app.screen
            shown = ""
            if isinstance(screen, ErrorScreen):  # say what went wrong, not only where
                shown = f": {screen.error_title}: {screen.message} {screen.hint}"
            raise AssertionError(f"timed out waiting for {what or condition} on {screen!r}{shown}")
        await pilot.pause(0.05)


def _holds(condition: Callable[[], object]) -> bool:
    try:
        return bool(condition())
    except NoMatches:
        return False


def server_profile(
    info: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    *,
    bucket: str | None = None,
    prefix: str = "",
    password: str | None = None,
    known_hosts: Path | None = None,
    name: str = "test",
) -> Profile:
    """A profile for a test server: password login (embedded) or key login (sshd)."""
    if password is not None or info.kind == "asyncssh":
        sftp = SftpSettings(
            host=info.host,
            port=info.port,
            user=info.password_user,
            auth=SftpAuth.PASSWORD,
            password=Secret.literal(password if password is not None else info.password or ""),
            known_hosts=str(known_hosts or info.known_hosts),
            remote_folder=info.remote_root,
        )
    else:
        sftp = SftpSettings(
            host=info.host,
            port=info.port,
            user=info.username,
            auth=SftpAuth.KEY,
            key_file=str(info.identity_file),
            known_hosts=str(known_hosts or info.known_hosts),
            remote_folder=info.remote_root,
        )
    return Profile(
        name=name,
        sftp=sftp,
        s3=S3Settings(
            endpoint_url=s3_endpoint.endpoint_url,
            region=s3_endpoint.region or "us-east-1",
            path_style=True,
            bucket=bucket,
            prefix=prefix,
        ),
    )


def make_app(tmp_path: Path, **options: Any) -> SftpS3App:
    """The real app, isolated from the user's profiles, journal and ssh config."""
    options.setdefault("profiles_path", tmp_path / "profiles.toml")
    options.setdefault("journal_dir", tmp_path / "journal")
    options.setdefault("delivery_record_dir", tmp_path / "deliveries")
    options.setdefault("read_user_config", False)
    options.setdefault("sampler_interval", 0.1)
    return SftpS3App(AppOptions(**options))


def browse_ready(app: Any) -> bool:
    """The browse screen is up, its remote folder listed and shown."""
    from sftp_s3_tui.ui.screens.browse import BrowseScreen
    from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree

    screen = app.screen
    if not isinstance(screen, BrowseScreen) or not screen.query(RemoteTree):
        return False
    tree = screen.query_one(RemoteTree)
    return tree.ready and bool(tree.entries)


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain text (the lines a person reads in tmux)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


def _fixed_info() -> ConnectionInfo:
    record = StoreCapabilities(
        endpoint="https://s3.eu-west-1.amazonaws.com",
        bucket="landing",
        requested=ChecksumChoice.AUTO,
        algorithm=ChecksumChoice.CRC64NVME,
        checksum_checked=True,
        md5_checked=True,
        etag_is_md5=True,
        findings=("CRC64NVME: accepted (CRC64NVME checked, Content-MD5 checked, ETag is MD5)",),
    )
    return ConnectionInfo(
        s3_endpoint="https://s3.eu-west-1.amazonaws.com",
        region="eu-west-1",
        path_style=False,
        verify_tls=True,
        checksum=ChecksumChoice.AUTO,
        conflict=ConflictPolicy.SKIP_EXISTING,
        storage_class="STANDARD_IA",
        sse="aws:kms",
        stores=(record,),
        sftp_display="sftp://etl@sftp.partner.example",
        login="key file /home/etl/.ssh/id_ed25519",
        host_key_fingerprint="ssh-ed25519 SHA256:Xq0t9I3w2m9QmKx8JvEo0zXh4Jm3dXl1rDkqB3l6P2E",
        host_key_policy=HostKeyPolicy.STRICT,
        known_hosts="/home/etl/.ssh/known_hosts",
        limits=ServerLimits(255 * KiB, 255 * KiB, reported=True),
        block_size=0,
        requests_in_flight=0,
        connections_cap=4,
        window_bytes=16 * MiB,
        bwlimit_bytes_per_second=0,
        jump="bastion.partner.example",
        follow_symlinks=False,
        link=LinkFigures(0.048, 16 * MiB, 4, 16 * MiB * 4 / 0.048),
    )


def _error_app(tmp_path: Path) -> SftpS3App:
    return SftpS3App(
        AppOptions(
            journal_dir=None, read_user_config=False, profiles_path=tmp_path / "profiles.toml"
        )
    )


def _plan_screen() -> PlanScreen:
    endpoint = SftpEndpoint("sftp.partner.example", username="etl")
    jobs = [
        FileJob(endpoint, f"/outgoing/{name}", size, 1_795_100_000, "landing", f"2026-11/{name}")
        for name, size in (
            ("customers_2026.csv", 300 * MiB),
            ("orders 2026-11.csv", 48 * MiB),
            ("ünïcode name.parquet", 3 * MiB + 123),
            ("README.txt", 2048),
        )
    ]
    existing = {
        "2026-11/orders 2026-11.csv": ExistingObject(
            "2026-11/orders 2026-11.csv", 40 * MiB, 1_795_000_000.0
        ),
        "2026-11/README.txt": ExistingObject("2026-11/README.txt", 2048, 1_795_200_000.0),
    }
    dest = parse_s3_url("s3://landing/2026-11/")
    options = TransferOptions()

    def plan_for(policy: ConflictPolicy) -> CopyPlan:
        """The engine's plan from a fixed destination (what preview_copy does after its
        lookups)."""
        plan = CopyPlan()
        for job in jobs:
            found = existing.get(job.key)
            decision = decide(policy, job.size, job.mtime, found)
            plan.files.append(plan_file(job, decision.action, decision.reason, options, found))
        return plan

    async def replan(policy: ConflictPolicy) -> CopyPlan:
        return plan_for(policy)

    policy = ConflictPolicy.SKIP_EXISTING
    return PlanScreen(plan_for(policy), dest, policy, replan)


def demo_app(tmp_path: Path) -> SftpS3App:
    return SftpS3App(
        AppOptions(
            demo=True,
            demo_large=False,
            subtitle=SUBTITLE,
            journal_dir=None,
            read_user_config=False,
            profiles_path=tmp_path / "profiles.toml",
        )
    )


async def browsing(pilot: Any) -> None:
    """Wait until the demo is connected and both sides are listed."""
    app = pilot.app
    await wait_for(pilot, lambda: browse_ready(app), 60, "browse")
    screen = app.screen
    picker = screen.query_one(BucketPicker)

    def landing_listed() -> bool:
        nodes = list(picker.s3_tree.root.children)
        return len(nodes) == 2 and bool(nodes[1].children)

    await wait_for(pilot, landing_listed, what="buckets")
    await wait_for(pilot, lambda: idle(app), what="the listings and the destination marks")


def watches_listed(app: Any) -> bool:
    """The watches list has its rows."""
    tables = app.screen.query("#watches-table")
    return bool(tables) and tables.first().row_count > 0


def idle(app: Any) -> bool:
    """No worker of the app (listings, the destination marks) is still running."""
    return all(worker.is_finished for worker in app.workers)


def frozen(panel: TransferPanel) -> bool:
    """The fixed rows are in the list (what :func:`freeze_panel` put there)."""
    shown = panel.transfer_list.rows_by_id
    return all(row.transfer_id in shown for row in fixed_rows())


def freeze_panel(panel: TransferPanel) -> None:
    """Replace the live figures with fixed ones."""
    panel.on_unmount()  # stop following the live sampler
    for row in fixed_rows():
        panel.transfer_list.add_transfer(row)
    panel.snapshot = fixed_snapshot()
