"""The SFTP side: one remote folder at a time, loaded lazily, filterable, multi-select."""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static
from wcmatch import fnmatch as wcfnmatch

from ...engine.errors import ConfigError, TransferError
from ...engine.sftp.entries import RemoteEntry
from ..formatting import format_mtime, format_size
from .row_table import RowTable

Lister = Callable[[str], Awaitable[list[RemoteEntry]]]
UP = "\0up"
#: Rows added per event-loop turn when showing a folder.
FILL_BATCH = 500


GLOB_FLAGS = wcfnmatch.IGNORECASE | wcfnmatch.BRACE | wcfnmatch.EXTMATCH


def has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[{")


def filter_entries(entries: list[RemoteEntry], text: str) -> list[RemoteEntry]:
    """Entries whose name matches ``text``: a glob (``*.csv``, ``part-0[0-4]*``) when it has
    glob characters, as the CLI takes them; otherwise a case-blind substring."""
    if not text:
        return entries
    if has_glob(text):
        return [e for e in entries if wcfnmatch.fnmatch(e.name, text, flags=GLOB_FLAGS)]
    needle = text.casefold()
    return [e for e in entries if needle in e.name.casefold()]


class FilterInput(Input):
    """The filter box: Down, Space, Enter and Escape go back to the list instead of typing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,space", "leave", "To the list", key_display="↓", priority=True),
        Binding("escape", "leave", "Done filtering", key_display="esc"),
    ]

    class Left(Message):
        """The user left the filter box."""

    def action_leave(self) -> None:
        self.post_message(self.Left())


class RemoteTree(Vertical):
    """A remote folder as a table (name, size, modified); enter opens, space selects.

    Listings run in an exclusive worker, so opening a huge folder never blocks the screen and
    a newer request supersedes an older one. The selection spans folders.
    """

    DEFAULT_CSS = """
    RemoteTree { height: 1fr; }
    RemoteTree > #remote-header { height: 1; padding: 0 1; background: $boost; }
    RemoteTree > #remote-filter { height: 1; border: none; padding: 0 1; }
    RemoteTree > DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_select",
            "Select",
            priority=False,
            tooltip="select or unselect the file under the cursor",
        ),
        Binding("backspace", "up", "Up", show=False, tooltip="the parent folder"),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            tooltip="show only names containing text or matching a glob",
        ),
        Binding("a", "select_all", "Select all", show=False, tooltip="select every file shown"),
        Binding(
            "plus",
            "select_glob",
            "Select by glob",
            key_display="+",
            show=False,
            tooltip="select the files matching a glob (*.csv)",
        ),
        Binding("o", "cycle_sort", "Sort", show=False, tooltip="sort by name, size or time"),
        Binding(
            "z",
            "folder_size",
            "Folder size",
            show=False,
            tooltip="add up the folder under the cursor",
        ),
        Binding("escape", "clear", "Clear", show=False, tooltip="clear the selection"),
    ]

    path: reactive[str] = reactive("/", init=False)
    sort_by: reactive[str] = reactive("name", init=False)
    filter_text: reactive[str] = reactive("")
    loading_path: reactive[str | None] = reactive(None)
    filling: reactive[bool] = reactive(False)

    class SelectionChanged(Message):
        """The set of selected paths changed."""

        def __init__(self, tree: RemoteTree) -> None:
            super().__init__()
            self.tree = tree

    class FolderShown(Message):
        """A folder's listing is in the table (after a load or a reload)."""

        def __init__(self, tree: RemoteTree, path: str) -> None:
            super().__init__()
            self.tree = tree
            self.path = path

    class ListingFailed(Message):
        """A folder could not be listed."""

        def __init__(self, error: TransferError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, lister: Lister, start: str = "/", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lister = lister
        self._start = start
        self.entries: list[RemoteEntry] = []
        self.selected: dict[str, RemoteEntry] = {}
        self._cursor_to: str | None = None  # the row to put the cursor on once shown
        self._shown_once = False  # a folder was listed (the start folder, or / instead)
        #: Names in this folder that already exist at the destination → the object's size.
        self.existing: dict[str, int] = {}
        #: Folder sizes counted on demand (path → bytes of every file below it).
        self.folder_sizes: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="remote-header")
        yield FilterInput(placeholder="/ filter: text or glob (*.csv)…", id="remote-filter")
        table: DataTable[Text | str] = RowTable(cursor_type="row", zebra_stripes=False)
        table.add_column(" ", key="mark", width=1)
        table.add_column(" ", key="dest", width=1)
        table.add_column("Name", key="name")
        table.add_column("Size", key="size")
        table.add_column("Modified", key="mtime")
        yield table

    def on_mount(self) -> None:
        self.load_folder(self._start)

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one(DataTable)

    # loading --------------------------------------------------------------------------------
    def load_folder(self, path: str) -> None:
        """List ``path`` (in the background) and show it."""
        self._cursor_to = None
        self.loading_path = path
        self._load(path)

    @work(exclusive=True, group="remote-listing", exit_on_error=False)
    async def _load(self, path: str) -> None:
        try:
            entries = await self._lister(path)
        except TransferError as exc:
            self.loading_path = None
            if not self._shown_once and path != "/":
                # the start folder is missing or unreadable: say so, and show / instead
                self.post_message(
                    self.ListingFailed(
                        ConfigError(
                            f"The start folder {path} cannot be opened: {exc.message}",
                            "showing / instead; change Start folder in the profile",
                        )
                    )
                )
                self.load_folder("/")
                return
            self.post_message(self.ListingFailed(exc))
            return
        self._shown_once = True
        self.entries = entries
        self.loading_path = None
        self.filter_text = ""
        self.query_one("#remote-filter", Input).value = ""
        if self.path == path:
            self._fill()
        else:
            self.path = path

    def watch_path(self) -> None:
        self.existing = {}
        self._fill()

    def watch_sort_by(self) -> None:
        self._fill()

    def watch_filter_text(self) -> None:
        self._fill()

    def watch_loading_path(self) -> None:
        self._update_header()

    def watch_filling(self) -> None:
        self._update_header()

    @property
    def ready(self) -> bool:
        """The folder is listed and all its rows are shown."""
        return self.loading_path is None and not self.filling

    def _visible(self) -> list[RemoteEntry]:
        shown = filter_entries(self.entries, self.filter_text)
        if self.sort_by == "size":
            return sorted(shown, key=lambda e: (not e.is_dir, -self._size_of(e), e.name))
        if self.sort_by == "date":
            return sorted(shown, key=lambda e: (not e.is_dir, -e.mtime, e.name))
        return shown

    def _size_of(self, entry: RemoteEntry) -> int:
        return self.folder_sizes.get(entry.path, 0) if entry.is_dir else entry.size

    def _fill(self) -> None:
        self.filling = True
        self._fill_rows(self.path, self._visible())

    @work(exclusive=True, group="remote-fill", exit_on_error=False)
    async def _fill_rows(self, path: str, entries: list[RemoteEntry]) -> None:
        """Add rows in batches, yielding between them: a 10,000-entry folder appears
        progressively while keys keep working (the table measures each new row)."""
        table = self.table
        table.clear()
        if path != "/":
            table.add_row("", "", Text("..", style="bold"), "", "", key=UP)
        for start in range(0, len(entries), FILL_BATCH):
            for entry in entries[start : start + FILL_BATCH]:
                table.add_row(*self._row(entry), key=entry.path)
            if self._cursor_to is not None and self._cursor_to in table.rows:
                table.move_cursor(row=table.get_row_index(self._cursor_to), scroll=True)
                self._cursor_to = None
            if start + FILL_BATCH < len(entries):
                await asyncio.sleep(0.005)
        self.filling = False
        self.post_message(self.FolderShown(self, path))

    def _row(self, entry: RemoteEntry) -> tuple[Text | str, ...]:
        mark: Text | str = Text("✓", style="bold green") if entry.path in self.selected else ""
        size: Text | str = ""
        if entry.is_dir:
            name = Text(entry.name + "/", style="bold")
            if entry.path in self.folder_sizes:
                size = Text(format_size(self.folder_sizes[entry.path]), justify="right")
        else:
            name = Text(entry.name)
            size = Text(format_size(entry.size), justify="right")
        if entry.is_link:
            name.append(" →", style="dim")
        return (mark, self._dest_mark(entry), name, size, format_mtime(entry.mtime))

    def _dest_mark(self, entry: RemoteEntry) -> Text | str:
        """``=`` already at the destination with the same size, ``≠`` with another size."""
        key = entry.name + "/" if entry.is_dir else entry.name
        if key not in self.existing:
            return ""
        if entry.is_dir or self.existing[key] == entry.size:
            return Text("=", style="bold cyan")
        return Text("≠", style="bold yellow")

    def set_existing(self, path: str, existing: dict[str, int]) -> None:
        """Mark the entries of ``path`` that exist at the destination (name → object size;
        folders as ``name/``)."""
        if path != self.path:
            return
        old, self.existing = self.existing, existing
        for entry in self.entries:
            key = entry.name + "/" if entry.is_dir else entry.name
            if (key in old or key in existing) and entry.path in self.table.rows:
                self.table.update_cell(entry.path, "dest", self._dest_mark(entry))
        self._update_header()

    def _update_header(self) -> None:
        if not self.is_mounted:
            return
        header = Text()
        header.append("SFTP ", style="bold")
        header.append(self.path)
        if self.loading_path is not None:
            header.append(f"  loading {self.loading_path}…", style="italic")
        elif self.filling:
            header.append(f"  showing {len(self._visible())} entries…", style="italic")
        shown = len(self._visible())
        if self.filter_text:
            header.append(f"  {shown}/{len(self.entries)} match", style="dim")
        if self.sort_by != "name":
            header.append(f"  by {self.sort_by}", style="dim")
        if self.existing:
            there = sum(1 for e in self.entries if (e.name + "/" * e.is_dir) in self.existing)
            header.append(f"  = {there} at the destination", style="cyan")
        if self.selected:
            chosen = self.selected.values()
            size = sum(self._size_of(e) for e in chosen)
            uncounted = sum(1 for e in chosen if e.is_dir and e.path not in self.folder_sizes)
            more = f" + {uncounted} folder(s), z counts" if uncounted else ""
            header.append(f"  ✓ {len(self.selected)} selected ({format_size(size)}{more})")
        self.query_one("#remote-header", Static).update(header, layout=False)

    # actions --------------------------------------------------------------------------------
    def _cursor_key(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def cursor_entry(self) -> RemoteEntry | None:
        """The entry under the cursor (None on ``..`` or an empty folder)."""
        return self._entry(self._cursor_key())

    def _entry(self, key: str | None) -> RemoteEntry | None:
        return next((e for e in self.entries if e.path == key), None)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key == UP:
            self.action_up()
            return
        entry = self._entry(key)
        if entry is not None and entry.is_dir:
            self.load_folder(entry.path)
        elif entry is not None:
            self._toggle(entry)

    def action_toggle_select(self) -> None:
        entry = self._entry(self._cursor_key())
        if entry is not None:
            self._toggle(entry)
            table = self.table
            if table.cursor_row < table.row_count - 1:
                table.move_cursor(row=table.cursor_row + 1)

    def _toggle(self, entry: RemoteEntry) -> None:
        if entry.path in self.selected:
            del self.selected[entry.path]
        else:
            self.selected[entry.path] = entry
        self._refresh_mark(entry)
        self._update_header()
        self.post_message(self.SelectionChanged(self))

    def _refresh_mark(self, entry: RemoteEntry) -> None:
        mark = Text("✓", style="bold green") if entry.path in self.selected else ""
        if entry.path in self.table.rows:
            self.table.update_cell(entry.path, "mark", mark)

    def action_select_all(self) -> None:
        """Select every visible entry (or clear them all when all are selected)."""
        visible = self._visible()
        every = all(e.path in self.selected for e in visible)
        for entry in visible:
            if every:
                self.selected.pop(entry.path, None)
            else:
                self.selected[entry.path] = entry
            self._refresh_mark(entry)
        self._update_header()
        self.post_message(self.SelectionChanged(self))

    def select_matching(self, pattern: str) -> int:
        """Select the visible entries whose name matches the glob ``pattern``; how many."""
        matched = [
            e for e in self._visible() if wcfnmatch.fnmatch(e.name, pattern, flags=GLOB_FLAGS)
        ]
        for entry in matched:
            self.selected[entry.path] = entry
            self._refresh_mark(entry)
        self._update_header()
        self.post_message(self.SelectionChanged(self))
        return len(matched)

    def action_select_glob(self) -> None:
        """Ask for a glob and select what matches it (in this folder, after the filter)."""
        from ..screens.dialogs import PromptScreen

        def chosen(pattern: str | None) -> None:
            if pattern:
                count = self.select_matching(pattern)
                self.notify(
                    f"{count} entr{'y' if count == 1 else 'ies'} match {pattern}", timeout=3
                )

        prompt = PromptScreen("Select by glob", placeholder="*.csv, part-0[0-4]*, *.{csv,json}")
        self.app.push_screen(prompt, chosen)

    def action_cycle_sort(self) -> None:
        """Sort by name, then size (largest first), then date (newest first)."""
        order = ["name", "size", "date"]
        self.sort_by = order[(order.index(self.sort_by) + 1) % len(order)]
        self._update_header()

    def action_folder_size(self) -> None:
        """Count the size of the folder under the cursor, or of every selected folder."""
        folders = [e for e in self.selected.values() if e.is_dir]
        entry = self.cursor_entry()
        if entry is not None and entry.is_dir and entry not in folders:
            folders.append(entry)
        if not folders:
            self.notify("Put the cursor on a folder (or select folders) first.", timeout=4)
            return
        self._count_sizes(folders)

    @work(group="folder-sizes", exit_on_error=False)
    async def _count_sizes(self, folders: list[RemoteEntry]) -> None:
        for folder in folders:
            total, pending = 0, [folder.path]
            try:
                while pending:
                    for child in await self._lister(pending.pop()):
                        if child.is_dir:
                            if not child.is_link:
                                pending.append(child.path)
                        else:
                            total += child.size
            except TransferError as exc:
                self.post_message(self.ListingFailed(exc))
                return
            self.folder_sizes[folder.path] = total
            if folder.path in self.table.rows:
                self.table.update_cell(
                    folder.path, "size", Text(format_size(total), justify="right")
                )
        self._update_header()

    def clear_selection(self) -> None:
        for entry in list(self.selected.values()):
            del self.selected[entry.path]
            self._refresh_mark(entry)
        self._update_header()
        self.post_message(self.SelectionChanged(self))

    def action_up(self) -> None:
        """The parent folder, with the cursor on the folder we came from."""
        if self.path != "/":
            left = self.path.rstrip("/")
            self.load_folder(posixpath.dirname(left) or "/")
            self._cursor_to = left

    def action_filter(self) -> None:
        self.query_one("#remote-filter", Input).focus()

    def action_clear(self) -> None:
        if self.filter_text:
            self.query_one("#remote-filter", Input).value = ""
        elif self.selected:
            self.clear_selection()

    @on(Input.Changed, "#remote-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value

    @on(Input.Submitted, "#remote-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    @on(FilterInput.Left)
    def _filter_left(self, event: FilterInput.Left) -> None:
        event.stop()
        self.table.focus()
