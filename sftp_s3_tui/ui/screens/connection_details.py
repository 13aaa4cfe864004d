"""Connection details: what the S3 store was found to check, and what the SFTP link allows.

For the S3 endpoint: URL, region, the checksum strategy in use and the capability record the
session's probe keeps per store and bucket (``engine.checksums.SESSION_PROBES``; reused by every
transfer, never probed again). For the SFTP host: login, host key, the server's limits and the
measured round trip with the read ceiling it implies (window × connections ÷ RTT), naming the
knobs that raise it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from asyncssh.sftp import SAFE_SFTP_READ_LEN, SAFE_SFTP_WRITE_LEN
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static, TextArea

from ...engine.config import ChecksumChoice, ConflictPolicy, HostKeyPolicy
from ...engine.errors import TransferError
from ...engine.events import EngineEvent, SftpLinkMeasured, StoreChecked
from ...engine.s3.checksums import FULL_OBJECT, HEADER_NAME, SESSION_PROBES, StoreCapabilities
from ...engine.sftp.server_profile import ServerProfile
from ..formatting import format_size
from ..session import Session
from .detail import CopyableTextScreen
from .dialogs import ARROW_FOCUS

#: How the details name the knobs of a slow SFTP link (the profile form's labels, then the CLI).
LINK_KNOBS = "raise the profile's Connections or SSH window (CLI: --connections / --window)"


@dataclass(frozen=True)
class LinkFigures:
    """An SFTP host's measured link (from ``SftpLinkMeasured`` / the sampler's snapshot)."""

    rtt_seconds: float
    window_bytes: int
    connections: int
    ceiling_bytes_per_second: float


@dataclass(frozen=True)
class ServerLimits:
    """The largest read and write the server takes; ``reported``: it said so in
    ``limits@openssh.com`` (else asyncssh's safe default applies)."""

    max_read_bytes: int
    max_write_bytes: int
    reported: bool


@dataclass(frozen=True)
class ConnectionInfo:
    """Everything the details view shows (gathered from a session, or built by a test)."""

    # S3
    s3_endpoint: str
    region: str | None
    path_style: bool
    verify_tls: bool
    checksum: ChecksumChoice
    conflict: ConflictPolicy
    storage_class: str | None
    sse: str | None
    stores: tuple[StoreCapabilities, ...]
    # SFTP
    sftp_display: str
    login: str
    host_key_fingerprint: str | None
    host_key_policy: HostKeyPolicy
    known_hosts: str
    limits: ServerLimits | None
    block_size: int  # 0: from the server's limits
    requests_in_flight: int  # 0: automatic
    connections_cap: int
    window_bytes: int
    bwlimit_bytes_per_second: int
    jump: str | None
    follow_symlinks: bool
    link: LinkFigures | None = None
    problems: tuple[str, ...] = field(default=())
    #: What the server was found to grant (None before its first login).
    server: ServerProfile | None = None


def format_ceiling(bytes_per_second: float) -> str:
    """``1.3 GiB/s`` / ``412 MiB/s`` / ``3.1 MiB/s`` (binary, as the throughput figures)."""
    if bytes_per_second >= 1 << 30:
        return f"{bytes_per_second / (1 << 30):.1f} GiB/s"
    if bytes_per_second >= 10 << 20:
        return f"{bytes_per_second / (1 << 20):.0f} MiB/s"
    return f"{bytes_per_second / (1 << 20):.1f} MiB/s"


def link_line(link: LinkFigures) -> str:
    """``rtt 48 ms · ceiling 1.3 GB/s · 4 conns`` (the compact form the figures line uses)."""
    plural = "conn" if link.connections == 1 else "conns"
    return (
        f"rtt {link.rtt_seconds * 1000:.0f} ms · ceiling "
        f"{format_ceiling(link.ceiling_bytes_per_second)} · {link.connections} {plural}"
    )


def _yes(flag: bool, yes: str, no: str) -> str:
    return yes if flag else no


def store_rows(record: StoreCapabilities) -> list[tuple[str, str]]:
    """One store and bucket's capability record, as label/value rows."""
    algorithm = record.algorithm
    rows = [("Bucket", record.bucket)]
    if record.requested is ChecksumChoice.AUTO:
        rows.append(("Checksum in use", f"{algorithm} (auto: the strongest the store honours)"))
    elif record.requested is not algorithm:
        rows.append(("Checksum in use", f"{algorithm} (asked: {record.requested})"))
    else:
        rows.append(("Checksum in use", str(algorithm)))
    if algorithm in HEADER_NAME:
        name = HEADER_NAME[algorithm]
        rows.append(
            (
                f"x-amz-checksum-{name.lower()}",
                "accepted and echoed; "
                + _yes(
                    record.checksum_checked,
                    "validated (a wrong value is refused)",
                    "not validated (a wrong value is stored)",
                ),
            )
        )
        rows.append(
            (
                "Full object",
                _yes(
                    algorithm in FULL_OBJECT,
                    "FULL_OBJECT accepted: the whole object's CRC is compared after Complete",
                    "COMPOSITE: a checksum of the parts' checksums (-N)",
                ),
            )
        )
    if algorithm is not ChecksumChoice.NONE:
        rows.append(
            (
                "Content-MD5",
                _yes(record.md5_checked, "validated (a wrong MD5 is refused)", "not validated"),
            )
        )
        rows.append(
            (
                "ETag",
                _yes(
                    record.etag_is_md5,
                    "is the MD5 (multipart: MD5 of the part MD5s, compared after Complete)",
                    "is not an MD5 (SSE-KMS / SSE-C, or the store's own): not compared",
                ),
            )
        )
    else:
        rows.append(("Verified by", "size only (--checksum none)"))
    if not record.payload_signed:
        rows.append(
            (
                "Body SHA-256",
                "not checked by the store: bodies go UNSIGNED-PAYLOAD (the checks above "
                "prove the bytes; no SHA-256 of each body is computed)",
            )
        )
    for number, finding in enumerate(record.findings, 1):
        rows.append((f"Probe {number}", finding))
    return rows


def link_rows(info: ConnectionInfo) -> list[tuple[str, str]]:
    """The SFTP link's measured figures: what the figures line sends the user here for (i),
    so they come first, where an 80x24 terminal shows them without scrolling."""
    rows: list[tuple[str, str]] = [("", "SFTP link (why a copy is as fast as it is)")]
    link = info.link
    if link is None:
        rows.append(("Round trip", "not measured yet (measured at each login)"))
    else:
        rows += [
            ("Round trip", f"{link.rtt_seconds * 1000:.1f} ms (measured at login)"),
            ("Connections", f"{link.connections} open of {info.connections_cap}"),
            ("Window", f"{format_size(link.window_bytes)} per connection"),
            (
                "Read ceiling",
                f"{format_ceiling(link.ceiling_bytes_per_second)} = window × connections ÷ RTT"
                + (" (lowered to the bandwidth limit)" if info.bwlimit_bytes_per_second else ""),
            ),
            ("To go faster", LINK_KNOBS),
        ]
    return rows


def detail_rows(info: ConnectionInfo) -> list[tuple[str, str]]:
    """Everything, as label/value rows; a row with an empty label is a section title."""
    rows: list[tuple[str, str]] = link_rows(info)
    rows.append(("", "S3 endpoint"))
    rows += [
        ("URL", info.s3_endpoint),
        ("Region", info.region or "(the AWS chain's default)"),
        ("Addressing", _yes(info.path_style, "path-style", "virtual-hosted")),
        ("TLS", _yes(info.verify_tls, "certificate checked", "certificate NOT checked")),
        ("Checksum strategy", str(info.checksum)),
        ("Storage class", info.storage_class or "(the bucket's default)"),
        ("Encryption", info.sse or "(the bucket's default)"),
        (
            "Conditional writes",
            "not probed; skip-existing HEAD-checks the key before the upload and before "
            "publishing, and sends If-None-Match: *"
            + (
                " (skip-existing is the default here)"
                if info.conflict is ConflictPolicy.SKIP_EXISTING
                else ""
            ),
        ),
    ]
    if info.stores:
        for record in info.stores:
            rows.append(("", f"Store check: {record.bucket}"))
            rows += store_rows(record)
    else:
        rows.append(
            (
                "Store check",
                "not probed yet: the first transfer to a bucket checks it once (a throw-away "
                "multipart upload, aborted) and every later transfer reuses the record",
            )
        )
    rows.append(("", "SFTP host"))
    rows += [
        ("Host", info.sftp_display),
        ("Login", info.login),
        ("Host key", info.host_key_fingerprint or "(not connected)"),
        (
            "Host key policy",
            _yes(
                info.host_key_policy is HostKeyPolicy.STRICT,
                f"ask unless in {info.known_hosts}",
                f"accept new keys, record them in {info.known_hosts}",
            ),
        ),
    ]
    if info.jump:
        rows.append(("Jump host", info.jump))
    limits = info.limits
    if limits is not None:
        rows.append(
            (
                "Server limits",
                f"read {format_size(limits.max_read_bytes)}, write "
                f"{format_size(limits.max_write_bytes)} per request "
                + _yes(
                    limits.reported,
                    "(limits@openssh.com)",
                    "(not reported: no limits@openssh.com, a safe default)",
                ),
            )
        )
    server = info.server
    if server is not None:
        rows += [
            ("Banner", server.banner or "(none)"),
            ("Server profile", server.summary()),
            ("Extensions", ", ".join(server.extensions) or "none"),
            ("Sessions", _sessions(server)),
            ("Plain rename", _RENAME_ROWS.get(server.rename_overwrites, _RENAME_ROWS["unknown"])),
        ]
    block = format_size(info.block_size) if info.block_size else "the server's read limit"
    requests = str(info.requests_in_flight) if info.requests_in_flight else "automatic"
    rows.append(("Read block", f"{block}; requests in flight per file: {requests}"))
    rows.append(
        (
            "Link settings",
            f"up to {info.connections_cap} connection(s), SSH window "
            f"{format_size(info.window_bytes)} each"
            + (
                f", bandwidth limit {format_ceiling(info.bwlimit_bytes_per_second)}"
                if info.bwlimit_bytes_per_second
                else ""
            ),
        )
    )
    rows.append(
        (
            "Symlinked folders",
            _yes(info.follow_symlinks, "followed (loops detected)", "skipped and counted"),
        )
    )
    for problem in info.problems:
        rows.append(("Note", problem))
    return rows


def details_text(info: ConnectionInfo) -> str:
    """The details as plain text (what the copy key puts on the clipboard)."""
    rows = detail_rows(info)
    width = max(len(label) for label, _ in rows)
    lines: list[str] = []
    for label, value in rows:
        if not label:
            lines += ([""] if lines else []) + [f"── {value} ──"]
        else:
            lines.append(f"{label.ljust(width)}  {value}")
    return "\n".join(lines)


def _login(session: Session) -> str:
    sftp = session.target.sftp
    if sftp.password:
        return "password"
    if sftp.identity_files:
        return "key file " + ", ".join(sftp.identity_files)
    if sftp.private_keys:
        return "private key from a secret store"
    return "ssh-agent" if sftp.use_agent else "(none)"


def _link(event: SftpLinkMeasured | None) -> LinkFigures | None:
    if event is None:
        return None
    return LinkFigures(
        rtt_seconds=event.rtt_seconds,
        window_bytes=event.window_bytes,
        connections=event.connections,
        ceiling_bytes_per_second=event.ceiling_bytes_per_second,
    )


async def gather(session: Session) -> ConnectionInfo:
    """What the session knows now: the store records, the host key, limits and link."""
    target = session.target
    sftp, s3, options = target.sftp, target.s3, target.options
    pool = session.queue.sftp
    problems: list[str] = []
    fingerprint: str | None = None
    limits: ServerLimits | None = None
    try:
        client = await pool.client(sftp)
        fingerprint = await pool.host_key_fingerprint(sftp)
        found = client.limits
        default = (SAFE_SFTP_READ_LEN, SAFE_SFTP_WRITE_LEN)
        limits = ServerLimits(
            found.max_read_len,
            found.max_write_len,
            (found.max_read_len, found.max_write_len) != default,
        )
    except TransferError as exc:
        problems.append(f"SFTP: {exc.message}")
    endpoint = s3.display
    stores = tuple(r for r in SESSION_PROBES.known() if r.endpoint == endpoint)
    sse = options.object_options.sse or s3.server_side_encryption
    return ConnectionInfo(
        s3_endpoint=endpoint,
        region=s3.region,
        path_style=s3.path_style,
        verify_tls=s3.verify_tls,
        checksum=options.checksum,
        conflict=session.default_conflict,
        storage_class=options.object_options.storage_class or s3.storage_class,
        sse=sse,
        stores=stores,
        sftp_display=sftp.display,
        login=_login(session),
        host_key_fingerprint=fingerprint,
        host_key_policy=sftp.host_key_policy,
        known_hosts=str(sftp.known_hosts_path),
        limits=limits,
        block_size=options.sftp_block_size,
        requests_in_flight=options.sftp_requests,
        connections_cap=sftp.connections,
        window_bytes=sftp.window_bytes,
        bwlimit_bytes_per_second=sftp.bwlimit_bytes_per_second,
        jump=sftp.jump,
        follow_symlinks=sftp.follow_symlinks,
        link=_link(pool.link(sftp)),
        problems=tuple(problems),
        server=pool.server_profile(sftp),
    )


class ConnectionDetailsScreen(CopyableTextScreen):
    """The session's connection details; refreshed when a store is checked or a link measured.

    ``c`` copies the text, ``r`` reads it again, Esc closes.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,i", "close", "Close"),
        Binding("c", "copy_text", "Copy text"),
        Binding("r", "refresh_details", "Refresh"),
        *ARROW_FOCUS,
    ]

    copied = "the connection details"

    DEFAULT_CSS = """
    ConnectionDetailsScreen > .dialog { width: 120; height: 90%; }
    ConnectionDetailsScreen #details-text { height: 1fr; }
    """

    def __init__(self, session: Session | None, info: ConnectionInfo | None = None) -> None:
        super().__init__()
        self.session = session
        self.info = info
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog detail connection-details"):
            yield Static(Text("Connection details", style="bold"), classes="title")
            yield TextArea(
                details_text(self.info) if self.info else "Reading the connection's details…",
                read_only=True,
                id="details-text",
            )
            yield Static(Text("c copies all · r refreshes · esc closes", "dim"))
            with Horizontal(classes="buttons"):
                yield Button("Copy text", id="copy")
                yield Button("Close", variant="primary", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()
        if self.session is not None:
            self.action_refresh_details()

            def on_event(event: EngineEvent) -> None:
                if isinstance(event, StoreChecked | SftpLinkMeasured):
                    self.call_later(self.action_refresh_details)

            self._unsubscribe = self.session.bus.subscribe(on_event)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    @work(exclusive=True, group="connection-details", exit_on_error=False)
    async def action_refresh_details(self) -> None:
        if self.session is None:
            return
        self.info = await gather(self.session)
        self._show()

    def _show(self) -> None:
        if self.info is None:
            return
        area = self.query_one(TextArea)
        text = details_text(self.info)
        if area.text != text:
            area.load_text(text)

    @property
    def text(self) -> str:
        return details_text(self.info) if self.info else ""


#: The "Plain rename" row: what the --move-to probe found about an existing target.
_RENAME_ROWS = {
    "refuses": "refuses an existing target (probed in the archive folder; archive moves use it)",
    "replaces": "REPLACES an existing target (probed): archive moves use hardlink@openssh.com "
    "where offered, else a concurrent archiver could clobber an archived file",
    "unknown": "not probed (only --move-to probes it, at its first move)",
}


def _sessions(server: ServerProfile) -> str:
    """The "Sessions" row: connections asked and granted, and the cap a refusal showed."""
    if not server.connections_asked:
        return "not known yet"
    text = (
        f"{server.connections_granted} open at most of {server.connections_asked} allowed "
        "(more open only for a far host)"
    )
    if server.connection_limit:
        text = (
            f"the server grants {server.connection_limit} of {server.connections_asked} "
            f"({server.connection_limit_source}); no more are asked for"
        )
    return text
