"""One cell per part, coloured by state: waiting, reading, uploading, done, retried, failed."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...engine.events import PartState
from ...metrics import PART_STATES

#: Glyph and style of each part state (index = the sampler's part code).
CELLS: dict[PartState, tuple[str, str]] = {
    PartState.WAITING: ("░", "grey42"),
    PartState.READING: ("▤", "bold yellow"),
    PartState.UPLOADING: ("▥", "bold dodger_blue1"),
    PartState.DONE: ("■", "green"),
    PartState.RETRIED: ("▣", "bold dark_orange"),
    PartState.FAILED: ("✗", "bold red"),
}
_BY_CODE = [CELLS[state] for state in PART_STATES]
#: A cancelled transfer's unfinished parts: stopped by the user, not failed (its upload was
#: aborted, so they will not land).
CANCELLED_CELL = ("⊘", "grey62")
_DONE_CODE = PART_STATES.index(PartState.DONE)


class ChunkMap(Widget):
    """The focused transfer's parts; large files are folded so the map fits its area."""

    DEFAULT_CSS = """
    ChunkMap { height: 1; }
    """

    part_codes: reactive[bytes] = reactive(b"")
    #: The transfer was cancelled: its unfinished parts show as cancelled, not as failed.
    cancelled: reactive[bool] = reactive(False)

    def render(self) -> Text:
        codes = self.part_codes
        if not codes:
            return Text("no transfer selected", style="dim")
        width = max(self.size.width, 10)
        rows = 4
        cells = width * rows
        if len(codes) > cells:
            # Fold: each cell stands for several parts and shows the "most interesting" state.
            per_cell = -(-len(codes) // cells)
            priority = (5, 4, 1, 2, 0, 3)  # failed, retried, reading, uploading, waiting, done
            folded = bytearray()
            for start in range(0, len(codes), per_cell):
                group = set(codes[start : start + per_cell])
                folded.append(min(group, key=lambda c: priority.index(c)))
            codes = bytes(folded)
        # One span per run of equal cells (mostly done, then waiting), not one per cell: a map
        # of hundreds of parts repaints at every sampler tick, on the loop the transfer uses.
        text = Text(no_wrap=False, overflow="fold")
        start = 0
        for end in range(1, len(codes) + 1):
            if end == len(codes) or codes[end] != codes[start]:
                code = codes[start]
                cancelled = self.cancelled and code != _DONE_CODE
                glyph, style = CANCELLED_CELL if cancelled else _BY_CODE[code]
                text.append(glyph * (end - start), style)
                start = end
        return text

    def watch_part_codes(self, codes: bytes) -> None:
        """Grow to the rows the parts need (up to 4); layout only when that changes."""
        width = max(self.size.width, 10)
        rows = min(4, max(1, -(-len(codes) // width)))
        if self.styles.height is None or self.styles.height.value != rows:
            self.styles.height = rows


def legend() -> Text:
    """The chunk map's key, for the help screen and the panel's title."""
    text = Text()  # one blank between entries: the whole key fits an 80-column title
    for state, (glyph, style) in CELLS.items():
        text.append(glyph, style)
        text.append(f" {state.value} ")
    glyph, style = CANCELLED_CELL
    text.append(glyph, style)
    text.append(" cancelled")
    return text
