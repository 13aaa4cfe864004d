"""MiB/s now, and a sparkline of the recent history."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from ..formatting import format_rate

#: Eighths of a cell, from nothing to full.
BARS = " ▁▂▃▄▅▆▇█"
#: Samples the sparkline shows at most (the sampler's history is longer).
SAMPLES_SHOWN = 60


def spark_text(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as bars scaled from zero to their maximum, right-aligned;
    blank where there is no sample, and blank while nothing has moved.

    Textual's Sparkline scales from the minimum to the maximum and draws a lone sample as a
    full bar: before any data it showed a full-height bar, and a steady 60 MiB/s looked like
    a saw from 0 to the top. A rate's zero is a real zero, so these bars start there."""
    if width <= 0:
        return ""
    values = list(values)[-width:]
    top = max(values, default=0.0)
    if top <= 0:
        return " " * width
    bars = "".join(BARS[round(max(value, 0.0) / top * (len(BARS) - 1))] for value in values)
    return bars.rjust(width)


class RateSparkline(Widget):
    """The throughput history as one line of bars (see ``spark_text``)."""

    DEFAULT_CSS = """
    RateSparkline { height: 1; width: 1fr; color: $success; }
    """

    values: reactive[tuple[float, ...]] = reactive(())

    def render(self) -> Text:
        return Text(spark_text(self.values, self.size.width))


class Throughput(Horizontal):
    """Overall bytes per second: the latest rate first (never cut, however narrow the line),
    then the sparkline of the sampler's history in the room left."""

    DEFAULT_CSS = """
    Throughput { height: 1; width: 1fr; }
    Throughput > #rate { width: 12; padding: 0 1 0 0; text-style: bold; }
    """

    # the sparkline and the rate repaint themselves; the container needs no repaint
    history: reactive[tuple[float, ...]] = reactive((), repaint=False)
    bytes_per_second: reactive[float] = reactive(0.0, repaint=False)

    def compose(self) -> ComposeResult:
        yield Static(format_rate(0), id="rate")
        yield RateSparkline()

    def watch_history(self, history: tuple[float, ...]) -> None:
        data = tuple(history[-SAMPLES_SHOWN:])
        sparkline = self.query_one(RateSparkline)
        if sparkline.values != data:  # an idle queue's history stays the same: no repaint
            sparkline.values = data

    def watch_bytes_per_second(self, rate: float) -> None:
        text = format_rate(rate)
        label = self.query_one("#rate", Static)
        if str(label.content) != text:
            label.update(text, layout=False)
