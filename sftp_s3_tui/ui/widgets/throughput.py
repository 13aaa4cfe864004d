"""MB/s now, and a sparkline of the recent history."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Sparkline, Static

from ..formatting import format_rate


class Throughput(Horizontal):
    """Overall bytes per second: the sparkline of the sampler's history and the latest rate."""

    DEFAULT_CSS = """
    Throughput { height: 1; width: 1fr; }
    Throughput > .label { width: auto; padding: 0 1 0 0; text-style: bold; }
    Throughput > Sparkline { width: 1fr; height: 1; }
    Throughput > #rate { width: 12; text-align: right; }
    """

    # the sparkline and the rate repaint themselves; the container needs no repaint
    history: reactive[tuple[float, ...]] = reactive((), repaint=False)
    bytes_per_second: reactive[float] = reactive(0.0, repaint=False)

    def compose(self) -> ComposeResult:
        yield Static("MB/s", classes="label")
        yield Sparkline([], summary_function=max)
        yield Static(format_rate(0), id="rate")

    def watch_history(self, history: tuple[float, ...]) -> None:
        data = [value / 1e6 for value in history[-60:]] or [0.0]
        sparkline = self.query_one(Sparkline)
        if sparkline.data != data:  # an idle queue's history stays the same: no repaint
            sparkline.data = data

    def watch_bytes_per_second(self, rate: float) -> None:
        text = format_rate(rate)
        label = self.query_one("#rate", Static)
        if str(label.content) != text:
            label.update(text, layout=False)
