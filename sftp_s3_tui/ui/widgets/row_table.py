"""A DataTable of rows where Home and End go to the first and last row."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellType


class RowTable(DataTable[CellType]):
    """DataTable binds Home / End to the leftmost / rightmost column, which a table with a
    row cursor does not have: there they did nothing. Here they move to the first / last
    row, as in a file manager."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]
