"""Past runs, read from their manifests (JSON lines, one row per file: what landed when, with
what checksum). Read only; a folder shows every ``*.jsonl`` manifest in it, newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..formatting import format_size

STATUS_STYLE = {
    "done": "green",
    "skipped": "cyan",
    "failed": "bold red",
    "cancelled": "red",
    "waiting": "yellow",
}
#: Rows shown at most (the newest); the header counts them all.
ROWS_SHOWN = 5000


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One file of a past run, as its manifest row recorded it."""

    manifest: str
    finished: str
    status: str
    source: str
    key: str
    bytes: int
    sha256: str
    verified_by: str
    reason: str


def _row(manifest: Path, data: dict[str, Any]) -> HistoryRow | None:
    if data.get("kind", "file") != "file":
        return None
    source = data.get("source") or {}
    where = source.get("host", "") if isinstance(source, dict) else ""
    path = source.get("path", "") if isinstance(source, dict) else str(source)
    return HistoryRow(
        manifest=manifest.name,
        finished=str(data.get("finished") or data.get("started") or ""),
        status=str(data.get("status", "")),
        source=f"{where}:{path}" if where else path,
        key=f"s3://{data.get('bucket', '')}/{data.get('key', '')}",
        bytes=int(data.get("bytes") or 0),
        sha256=str(data.get("sha256") or ""),
        verified_by=str(data.get("verified_by") or ""),
        reason=str(data.get("reason") or ""),
    )


def read_history(where: Path) -> tuple[list[HistoryRow], list[str]]:
    """Rows of the manifest ``where`` (or of every ``*.jsonl`` in the folder ``where``), newest
    first, and a problem line per file or row that could not be read."""
    files = sorted(where.glob("*.jsonl")) if where.is_dir() else [where]
    rows: list[HistoryRow] = []
    problems: list[str] = []
    for manifest in files:
        try:
            lines = manifest.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            problems.append(f"{manifest}: {exc.strerror or exc}")
            continue
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = _row(manifest, json.loads(line))
            except (ValueError, TypeError, AttributeError):
                problems.append(f"{manifest.name} line {number}: not a manifest row")
                continue
            if row is not None:
                rows.append(row)
    rows.sort(key=lambda r: r.finished, reverse=True)
    return rows, problems


class HistoryScreen(ModalScreen[None]):
    """What past runs landed: time, status, source, key, bytes, sha256, verified by."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, where: Path) -> None:
        super().__init__()
        self.where = where
        self.rows: list[HistoryRow] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog history"):
            yield Static(Text(f"History — {self.where}", style="bold"), classes="title")
            yield Static(Text("reading…", style="italic"), id="history-summary")
            yield DataTable(cursor_type="row", id="history-table")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key, width in (
            ("Finished (UTC)", "finished", 24),
            ("Status", "status", 9),
            ("Source", "source", 34),
            ("Object", "key", 34),
            ("Bytes", "bytes", 10),
            ("sha256", "sha256", 14),
            ("Verified by", "verified", 22),
        ):
            table.add_column(label, key=key, width=width)
        self._load()

    @work(exclusive=True, group="history", exit_on_error=False)
    async def _load(self) -> None:
        import asyncio

        rows, problems = await asyncio.to_thread(read_history, self.where)
        self.rows = rows
        table = self.query_one(DataTable)
        for row in rows[:ROWS_SHOWN]:
            status = Text(row.status, style=STATUS_STYLE.get(row.status, ""))
            table.add_row(
                row.finished.replace("T", " ").removesuffix("Z"),
                status,
                Text(row.source, overflow="ellipsis", no_wrap=True),
                Text(row.key, overflow="ellipsis", no_wrap=True),
                Text(format_size(row.bytes), justify="right"),
                row.sha256[:12] + ("…" if row.sha256 else ""),
                row.verified_by,
            )
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        summary = Text(f"{len(rows)} file(s): ")
        summary.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        landed = sum(r.bytes for r in rows if r.status == "done")
        summary.append(f" · {format_size(landed)} landed")
        if not rows and not problems:
            summary = Text(f"No manifest rows in {self.where} yet.", style="dim")
        for problem in problems[:3]:
            summary.append(f"\n⚠ {problem}", style="yellow")
        self.query_one("#history-summary", Static).update(summary)

    def action_close(self) -> None:
        self.dismiss(None)
