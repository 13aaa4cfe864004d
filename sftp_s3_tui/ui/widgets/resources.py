"""Process resources while transferring: RSS against the memory budget, disk writes, retries."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...metrics import Snapshot
from ..formatting import format_size


class Resources(Widget):
    """RSS, buffer pool use of the budget, bytes written to disk, and part retries."""

    DEFAULT_CSS = """
    Resources { height: 1; width: 66; margin-left: 2; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)

    def render(self) -> Text:
        snap = self.snapshot
        text = Text()
        if snap is None:
            return text
        if snap.rss_bytes is not None:
            text.append("RSS ", "bold")
            text.append(format_size(snap.rss_bytes))
        if snap.buffer_pool_budget_bytes:
            used = snap.buffer_pool_bytes_in_use or 0
            text.append("  buffers ", "bold")
            budget = format_size(snap.buffer_pool_budget_bytes)
            text.append(f"{format_size(used).removesuffix(budget[-4:])}/{budget}")
        if snap.disk_write_bytes is not None:
            text.append("  disk writes ", "bold")
            style = "green" if snap.disk_write_bytes < 1 << 20 else "yellow"
            text.append(format_size(snap.disk_write_bytes), style)
        text.append("  retries ", "bold")
        text.append(str(snap.parts_retried), "dark_orange" if snap.parts_retried else "")
        return text
