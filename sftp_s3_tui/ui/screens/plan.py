"""The plan of a copy, before it starts: the conflict choice and what each file will do.

The plan is the engine's (``engine/plan/preview.py``), the same as ``copy --dry-run`` prints: a
new conflict choice asks the engine again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, RadioButton, RadioSet, Static

from ...engine.addresses import S3Location
from ...engine.config import ConflictPolicy
from ...engine.errors import TransferError
from ...engine.plan.conflicts import Action
from ...engine.plan.preview import CopyPlan, PlanTotals
from ..formatting import format_mtime, format_size
from ..messages import ErrorRaised
from .dialogs import ARROW_FOCUS

POLICY_LABELS = {
    ConflictPolicy.OVERWRITE: "Overwrite",
    ConflictPolicy.SKIP_EXISTING: "Skip existing",
    ConflictPolicy.IF_NEWER: "If newer",
    ConflictPolicy.IF_DIFFERENT: "If different",
}
DECISION_STYLE = {
    Action.COPY: ("+ copy", "green"),
    Action.OVERWRITE: ("! overwrite", "bold yellow"),
    Action.COMPARE: ("≟ compare", "cyan"),
    Action.SKIP: ("– skip", "dim"),
    Action.WAITING: ("… waiting", "magenta"),
    Action.EXCLUDED: ("– excluded", "dim"),
    Action.INVALID: ("✗ invalid", "bold red"),
}
#: What is at the key already, for these actions.
FOUND = frozenset({Action.OVERWRITE, Action.COMPARE, Action.SKIP})
#: Rows the dialog lists; the totals always count every file.
ROWS_SHOWN = 500
#: From this table width on, each row says why in a column of its own; below it, the line
#: under the table says why for the row under the cursor (at 80 columns a Why column was
#: cut to nothing, and at 160 cut on the right).
WHY_COLUMN_FROM = 110
#: Widths of the fixed columns (the file name takes the rest).
DECISION_WIDTH, SIZE_WIDTH, THERE_WIDTH, THERE_NARROW_WIDTH = 11, 10, 26, 20

PlanChoice = tuple[ConflictPolicy, CopyPlan]
Replan = Callable[[ConflictPolicy], Awaitable[CopyPlan]]


def found_at_keys(plan: CopyPlan) -> int:
    """How many of the plan's files have an object at their key already."""
    return sum(f.action in FOUND for f in plan.files)


def totals_text(totals: PlanTotals) -> Text:
    """``3 copied new (1.2 GiB) · 1 overwritten (2.0 KiB) · 2 skipped (4 B) · to send 1.2 GiB``."""
    text = Text()
    words = {
        Action.COPY: "new",
        Action.OVERWRITE: "overwritten",
        Action.COMPARE: "compared (copied if different)",
        Action.SKIP: "skipped",
        Action.WAITING: "waiting",
        Action.EXCLUDED: "excluded",
        Action.INVALID: "cannot be copied",
    }
    parts = []
    for decision, word in words.items():
        if totals.files[decision]:
            _, style = DECISION_STYLE[decision]
            parts.append(
                Text(
                    f"{totals.files[decision]} {word} ({format_size(totals.bytes[decision])})",
                    style,
                )
            )
    for index, part in enumerate(parts):
        if index:
            text.append(" · ")
        text.append_text(part)
    text.append(f"  —  to send at most {format_size(totals.bytes_to_send)}", style="bold")
    text.append(f" in {totals.parts} part(s), {totals.requests} S3 request(s)", style="dim")
    return text


class PlanScreen(ModalScreen[PlanChoice | None]):
    """Choose what happens at existing keys and see each file's fate before copying."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o,y", "start", "Copy", key_display="y"),
        Binding("1", "policy(0)", "Overwrite", show=False),
        Binding("2", "policy(1)", "Skip existing", show=False),
        Binding("3", "policy(2)", "If newer", show=False),
        Binding("4", "policy(3)", "If different", show=False),
        *ARROW_FOCUS,
    ]

    def __init__(
        self, plan: CopyPlan, dest: S3Location, policy: ConflictPolicy, replan: Replan
    ) -> None:
        """``plan`` is ``policy``'s; ``replan`` asks the engine for another policy's."""
        super().__init__()
        self.plan = plan
        self.dest = dest
        self.policy = policy
        self.replan = replan
        self.planning = False  # a new conflict choice is being planned

    def compose(self) -> ComposeResult:
        count = len(self.plan.files)
        noun = "file" if count == 1 else "files"
        found = found_at_keys(self.plan)
        with Vertical(classes="dialog plan"):
            yield Static(
                Text.assemble(
                    (f"Copy {count} {noun} to {self.dest}", "bold"),
                    (f"   {found} already there", "yellow" if found else "dim"),
                ),
                classes="title",
            )
            yield Static(
                Text.assemble("At existing keys ", ("(keys 1–4):", "dim")), id="plan-policy-label"
            )
            with RadioSet(id="conflict"):
                for index, (policy, label) in enumerate(POLICY_LABELS.items(), 1):
                    yield RadioButton(f"{index} {label}", value=policy is self.policy)
            yield Static("", id="plan-totals")
            table: DataTable[Text | str] = DataTable(cursor_type="row", id="plan-table")
            yield table
            yield Static("", id="plan-why")
            with Horizontal(classes="buttons"):
                yield Button("Copy", variant="primary", id="start", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._table_width = 0
        self._show()
        self.query_one("#start", Button).focus()

    def on_resize(self) -> None:
        table = self.query_one("#plan-table", DataTable)
        if table.size.width and table.size.width != self._table_width:
            self._show()

    def _columns(self, table: DataTable[Text | str]) -> None:
        """The columns for the table's width: the name gets what the others leave."""
        width = table.size.width or max(self.app.size.width - 8, 40)
        self._table_width = table.size.width
        self._why_column = width >= WHY_COLUMN_FROM
        there = THERE_WIDTH if width >= 90 else THERE_NARROW_WIDTH
        columns = 5 if self._why_column else 4
        rest = width - DECISION_WIDTH - SIZE_WIDTH - there - 2 * columns - 2  # cell padding
        name = max(rest // 2 if self._why_column else rest, 12)
        table.clear(columns=True)
        table.add_column("Decision", key="decision", width=DECISION_WIDTH)
        table.add_column("File", key="file", width=name)
        table.add_column("Size", key="size", width=SIZE_WIDTH)
        table.add_column("At the key now", key="there", width=there)
        if self._why_column:
            table.add_column("Why", key="why", width=max(rest - name, 12))
        self._there_width = there

    def _show(self) -> None:
        table = self.query_one("#plan-table", DataTable)
        cursor = table.cursor_row
        self._columns(table)
        files = self.plan.files
        for item in files[:ROWS_SHOWN]:
            label, style = DECISION_STYLE[item.action]
            there: Text | str = ""
            if (found := item.existing) is not None:
                when = format_mtime(int(found.last_modified))
                if self._there_width < THERE_WIDTH:
                    when = when[:10]  # the day is enough where room is short
                there = Text(f"{format_size(found.size)}  {when}", style="dim")
            cells: list[Text | str] = [
                Text(label, style=style),
                Text(item.path, overflow="ellipsis", no_wrap=True),
                Text(format_size(item.size), justify="right"),
                there,
            ]
            if self._why_column:
                cells.append(Text(item.reason, style="dim"))
            table.add_row(*cells)
        if len(files) > ROWS_SHOWN:
            more = len(files) - ROWS_SHOWN
            blanks = [""] * (3 if self._why_column else 2)
            table.add_row("", Text(f"… and {more} more (counted in the totals)", "dim"), *blanks)
        if 0 < cursor < table.row_count:
            table.move_cursor(row=cursor)
        self.query_one("#plan-totals", Static).update(totals_text(self.plan.tally))
        self._show_why()

    @on(DataTable.RowHighlighted, "#plan-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_why()

    def _show_why(self) -> None:
        """Under a narrow table: why the file under the cursor gets its decision."""
        why = self.query_one("#plan-why", Static)
        why.display = not self._why_column
        table = self.query_one("#plan-table", DataTable)
        row = table.cursor_row
        files = self.plan.files
        if self._why_column or not 0 <= row < min(len(files), ROWS_SHOWN):
            why.update("")
            return
        item = files[row]
        name = item.path.rsplit("/", 1)[-1]
        why.update(Text.assemble(("why ", "bold"), (f"{name}: ", "dim"), item.reason))

    @on(RadioSet.Changed, "#conflict")
    def _policy_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.set_policy(list(POLICY_LABELS)[event.index])

    def set_policy(self, policy: ConflictPolicy) -> None:
        """Ask the engine for the plan under ``policy`` (in the background)."""
        if policy is self.policy:
            return
        self.policy = policy
        self.planning = True
        self.query_one("#plan-totals", Static).update(
            Text(f"Planning under {POLICY_LABELS[policy].lower()}…", style="italic")
        )
        self._replan(policy)

    @work(exclusive=True, group="replan", exit_on_error=False)
    async def _replan(self, policy: ConflictPolicy) -> None:
        try:
            plan = await self.replan(policy)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc))
            self.dismiss(None)
            return
        if policy is self.policy:  # not chosen again meanwhile
            self.plan = plan
            self.planning = False
            self._show()

    def action_policy(self, index: int) -> None:
        buttons = list(self.query(RadioButton))
        buttons[index].value = True  # RadioSet.Changed follows

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()

    def action_start(self) -> None:
        if self.planning:
            self.notify("Still planning the new choice…", severity="warning", timeout=2)
            return
        self.dismiss((self.policy, self.plan))

    def action_cancel(self) -> None:
        self.dismiss(None)
