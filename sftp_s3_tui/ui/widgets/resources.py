"""Process resources while transferring: RSS against the memory budget, disk writes, retries,
and the SFTP link's measured round trip with the read ceiling it implies."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...metrics import Snapshot
from ...metrics.sampler import SftpLinkStats
from ..formatting import format_size
from ..screens.connection_details import LinkFigures, link_line

#: The knobs of the ceiling, in the profile form's words (i opens the details).
LINK_KNOBS = "knobs: the profile's Connections, SSH window · i: details"
#: Said instead when the copy runs near the ceiling: the link is what limits it.
LINK_LIMITS = "the link limits this copy: raise the profile's Connections or SSH window · i"
#: From this share of the ceiling on, the link counts as the limit.
NEAR_CEILING = 0.7


class Resources(Widget):
    """RSS, buffer pool use of the budget, bytes written to disk, and part retries.

    The text is made when a snapshot arrives and the widget repaints only when it differs:
    on the event loop the engine shares, a repaint of an unchanged line is time the transfer
    loses."""

    DEFAULT_CSS = """
    Resources { height: 1; width: 66; margin-left: 2; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, repaint=False)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = Text()

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        text = resources_text(snapshot)
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        return self._text


def resources_text(snap: Snapshot | None) -> Text:
    """``RSS 212 MiB  buffers 64/512 MiB  disk writes 0 B  retries 1``."""
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


class LinkLine(Widget):
    """Under the figures, once a host's link is measured:
    ``sftp rtt 48 ms · ceiling 1.3 GB/s · 4 conns`` and the knobs that raise the ceiling."""

    DEFAULT_CSS = """
    LinkLine { height: 1; padding: 0 1; display: none; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, repaint=False)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = Text()

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        links = snapshot.sftp_links if snapshot is not None else ()
        if self.display != bool(links):
            self.display = bool(links)
        rate = snapshot.bytes_per_second if snapshot is not None else 0.0
        text = link_text(links, rate) if links else Text()
        if text != self._text:  # the same link and knobs: no repaint
            self._text = text
            self.refresh()

    def render(self) -> Text:
        return self._text


def link_text(links: tuple[SftpLinkStats, ...], bytes_per_second: float = 0.0) -> Text:
    """The slowest host's link, compactly, and the knobs that raise its ceiling (said as the
    limit when the copy runs at ``NEAR_CEILING`` of it or more)."""
    slowest = min(links, key=lambda link: link.ceiling_bytes_per_second)
    figures = LinkFigures(
        rtt_seconds=slowest.rtt_seconds,
        window_bytes=slowest.window_bytes,
        connections=slowest.connections,
        ceiling_bytes_per_second=slowest.ceiling_bytes_per_second,
    )
    text = Text()
    text.append("sftp ", "bold")
    text.append(link_line(figures))
    if len(links) > 1:
        text.append(f" (+{len(links) - 1} host)", "dim")
    ceiling = slowest.ceiling_bytes_per_second
    if ceiling and bytes_per_second >= NEAR_CEILING * ceiling:
        text.append("  " + LINK_LIMITS, "yellow")
    else:
        text.append("  " + LINK_KNOBS, "dim")
    return text
