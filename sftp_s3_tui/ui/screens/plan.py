"""The plan of a copy, before it starts: the conflict choice and what each file will do."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, RadioButton, RadioSet, Static

from ...engine.config import ConflictPolicy
from ...engine.locations import S3Location
from ...engine.plan import FileJob
from ..decisions import Decision, ExistingObject, PlannedFile, PlanTotals, decide_all
from ..formatting import format_mtime, format_size

POLICY_LABELS = {
    ConflictPolicy.OVERWRITE: "Overwrite",
    ConflictPolicy.SKIP_EXISTING: "Skip existing",
    ConflictPolicy.IF_NEWER: "If newer",
    ConflictPolicy.IF_DIFFERENT: "If different",
}
DECISION_STYLE = {
    Decision.COPY: ("+ copy", "green"),
    Decision.OVERWRITE: ("! overwrite", "bold yellow"),
    Decision.COMPARE: ("≟ compare", "cyan"),
    Decision.SKIP: ("– skip", "dim"),
}
#: Rows the dialog lists; the totals always count every file.
ROWS_SHOWN = 500

PlanChoice = tuple[ConflictPolicy, list[PlannedFile]]


def totals_text(totals: PlanTotals) -> Text:
    """``3 copied new (1.2 GiB) · 1 overwritten (2.0 KiB) · 2 skipped (4 B) · to send 1.2 GiB``."""
    text = Text()
    words = {
        Decision.COPY: "new",
        Decision.OVERWRITE: "overwritten",
        Decision.COMPARE: "compared (copied if different)",
        Decision.SKIP: "skipped",
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
    ]

    def __init__(
        self,
        jobs: list[FileJob],
        existing: dict[str, ExistingObject],
        dest: S3Location,
        policy: ConflictPolicy,
    ) -> None:
        super().__init__()
        self.jobs = jobs
        self.existing = existing
        self.dest = dest
        self.policy = policy
        self.planned = decide_all(jobs, existing, policy)

    def compose(self) -> ComposeResult:
        noun = "file" if len(self.jobs) == 1 else "files"
        with Vertical(classes="dialog plan"):
            yield Static(
                Text.assemble(
                    (f"Copy {len(self.jobs)} {noun} to {self.dest}", "bold"),
                    (
                        f"   {len(self.existing)} already there",
                        "yellow" if self.existing else "dim",
                    ),
                ),
                classes="title",
            )
            with Horizontal(id="plan-policy"):
                yield Static("At existing keys:", id="plan-policy-label")
                with RadioSet(id="conflict"):
                    for index, (policy, label) in enumerate(POLICY_LABELS.items(), 1):
                        yield RadioButton(f"{index} {label}", value=policy is self.policy)
            yield Static("", id="plan-totals")
            table: DataTable[Text | str] = DataTable(cursor_type="row", id="plan-table")
            yield table
            with Horizontal(classes="buttons"):
                yield Button("Copy", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        table = self.query_one("#plan-table", DataTable)
        table.add_column("Decision", key="decision", width=11)
        table.add_column("File", key="file")
        table.add_column("Size", key="size", width=10)
        table.add_column("At the key now", key="there", width=28)
        table.add_column("Why", key="why")
        self._show()
        self.query_one("#start", Button).focus()

    def _show(self) -> None:
        table = self.query_one("#plan-table", DataTable)
        table.clear()
        for item in self.planned[:ROWS_SHOWN]:
            label, style = DECISION_STYLE[item.decision]
            there: Text | str = ""
            if (found := item.existing) is not None:
                when = format_mtime(int(found.modified))
                there = Text(f"{format_size(found.size)}  {when}", style="dim")
            table.add_row(
                Text(label, style=style),
                Text(item.job.path, overflow="ellipsis", no_wrap=True),
                Text(format_size(item.job.size), justify="right"),
                there,
                Text(item.reason, style="dim"),
            )
        if len(self.planned) > ROWS_SHOWN:
            more = len(self.planned) - ROWS_SHOWN
            table.add_row("", Text(f"… and {more} more (counted in the totals)", "dim"), "", "", "")
        totals = PlanTotals.of(self.planned)
        self.query_one("#plan-totals", Static).update(totals_text(totals))

    @on(RadioSet.Changed, "#conflict")
    def _policy_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.set_policy(list(POLICY_LABELS)[event.index])

    def set_policy(self, policy: ConflictPolicy) -> None:
        """Decide every file again under ``policy``."""
        if policy is self.policy:
            return
        self.policy = policy
        self.planned = decide_all(self.jobs, self.existing, policy)
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
        self.dismiss((self.policy, self.planned))

    def action_cancel(self) -> None:
        self.dismiss(None)
