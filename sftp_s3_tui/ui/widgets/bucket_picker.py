"""The S3 side: buckets and prefixes in a lazily loaded tree, and the destination to type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from ...engine.addresses import S3Location, parse_s3_url
from ...engine.errors import TransferError, UsageError
from ...engine.s3.operations import S3Entry
from ..formatting import format_mtime, format_size

BucketLister = Callable[[], Awaitable[list[str]]]
PrefixLister = Callable[[str, str], Awaitable[list[S3Entry]]]


@dataclass(frozen=True)
class S3Node:
    """What a tree node stands for: a bucket (prefix ``""``), a prefix, or an object."""

    bucket: str
    prefix: str
    is_object: bool = False


def object_label(entry: S3Entry) -> Text:
    """``name  2.0 KiB  2026-11-21 10:04`` for an object leaf."""
    label = Text(entry.name)
    label.append(f"  {format_size(entry.size)}", style="dim")
    if entry.modified:
        label.append(f"  {format_mtime(int(entry.modified))}", style="dim")
    return label


class DestinationInput(Input):
    """The typed destination; Escape goes back to the bucket tree."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back to the tree", key_display="esc"),
    ]

    def action_leave(self) -> None:
        if self.parent is not None:
            self.parent.query_one(Tree).focus()


class BucketPicker(Vertical):
    """Pick where files land: browse buckets/prefixes, or type ``bucket/prefix/``."""

    DEFAULT_CSS = """
    BucketPicker { height: 1fr; }
    BucketPicker > #s3-header { height: 1; padding: 0 1; background: $boost; }
    BucketPicker > Tree { height: 1fr; }
    BucketPicker > #s3-destination { height: 3; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "d",
            "deliver",
            "Deliver",
            tooltip="copy the object (or prefix, or bucket) under the cursor into the SFTP "
            "folder shown: a temporary name, checked, then renamed into place",
        ),
        Binding(
            "D",
            "deliver(True)",
            "Plan delivery…",
            key_display="D",
            show=False,
            tooltip="show each object's path and what is there already, then deliver",
        ),
    ]

    destination: reactive[str] = reactive("", init=False)

    class DestinationChanged(Message):
        """The destination text changed (valid or not)."""

        def __init__(self, picker: BucketPicker) -> None:
            super().__init__()
            self.picker = picker

    class DeliverRequested(Message):
        """Deliver ``source`` (an object, or every object under a prefix) to the SFTP side."""

        def __init__(self, source: S3Location, always_plan: bool = False) -> None:
            super().__init__()
            self.source = source
            self.always_plan = always_plan

    class ListingFailed(Message):
        def __init__(self, error: TransferError) -> None:
            super().__init__()
            self.error = error

    def __init__(
        self,
        list_buckets: BucketLister,
        list_prefix: PrefixLister,
        destination: str = "",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._list_buckets = list_buckets
        self._list_prefix = list_prefix
        self._initial = destination
        #: Where the cursor goes back to once a reload lists its node again (_keep_cursor).
        self._cursor_wanted: S3Node | None = None

    def compose(self) -> ComposeResult:
        yield Static("S3", id="s3-header")
        tree: Tree[S3Node] = Tree("buckets", id="s3-tree")
        tree.show_root = False
        tree.guide_depth = 2
        yield tree
        yield DestinationInput(
            value=self._initial,
            placeholder="bucket/prefix/ (type a new prefix)",
            id="s3-destination",
        )

    def on_mount(self) -> None:
        self.destination = self._initial
        self.reload()

    @property
    def s3_tree(self) -> Tree[S3Node]:
        return self.query_one(Tree)

    def reload(self) -> None:
        """List the buckets again."""
        self._load_buckets()

    def _keep_cursor(self, under: TreeNode[S3Node]) -> None:
        """Remember what the cursor is on when the nodes below ``under`` are about to be
        listed again: removing them would drop the cursor onto the bucket, and a ``d``
        pressed then would deliver the whole bucket instead of the object the user chose."""
        node = self.s3_tree.cursor_node
        if node is None or node.data is None or node is under:
            return
        data = node.data
        parent = node.parent
        while parent is not None and parent is not under:
            parent = parent.parent
        if parent is under:
            self._cursor_wanted = S3Node(data.bucket, data.prefix, data.is_object)

    def _put_cursor_back(self, node: TreeNode[S3Node]) -> None:
        """After ``node``'s children are listed: the cursor back on the node it was on (or
        on its way there: the prefix above it is opened). Forgotten once the cursor is
        there, or when the listing shows the object is gone."""
        wanted = self._cursor_wanted
        if wanted is None:
            return
        for child in node.children:
            data = child.data
            if data is None or data.bucket != wanted.bucket:
                continue
            if data.prefix == wanted.prefix:
                # a new node has its line once the tree is laid out again: move then
                self.s3_tree.call_after_refresh(self._move_to, wanted)
                return
            if not data.is_object and wanted.prefix.startswith(data.prefix):
                child.expand()  # listed in turn, where the search goes on
                return
        if node.data is not None and node.data.bucket == wanted.bucket:
            self._cursor_wanted = None  # listed where it would be, and not there: gone

    def _move_to(self, wanted: S3Node) -> None:
        """The cursor onto ``wanted``'s node as the tree holds it now (a later listing may
        have replaced the one first found; it then puts the cursor back itself)."""
        if self._cursor_wanted is not wanted:
            return  # the user moved on, or a newer listing took over
        tree = self.s3_tree
        pending = [tree.root]
        while pending:
            node = pending.pop()
            data = node.data
            if data is not None and (data.bucket, data.prefix) == (wanted.bucket, wanted.prefix):
                tree.move_cursor(node)
                if tree.cursor_node is node:
                    self._cursor_wanted = None
                return
            pending.extend(node.children)

    @work(exclusive=True, group="s3-buckets", exit_on_error=False)
    async def _load_buckets(self) -> None:
        try:
            buckets = await self._list_buckets()
        except TransferError as exc:
            self.post_message(self.ListingFailed(exc))
            return
        root = self.s3_tree.root
        self._keep_cursor(root)
        root.remove_children()
        wanted = self._wanted()
        for bucket in buckets:
            node = root.add(f"🪣 {bucket}", data=S3Node(bucket, ""), allow_expand=True)
            if wanted is not None and wanted.bucket == bucket:
                node.expand()
        root.expand()
        self._put_cursor_back(root)

    @on(Tree.NodeExpanded, "#s3-tree")
    def _expanded(self, event: Tree.NodeExpanded[S3Node]) -> None:
        event.stop()
        node = event.node
        if node.data is not None and not node.children:
            self._load_prefix(node)

    @work(exit_on_error=False)
    async def _load_prefix(self, node: TreeNode[S3Node]) -> None:
        data = node.data
        assert data is not None
        try:
            entries = await self._list_prefix(data.bucket, data.prefix)
        except TransferError as exc:
            self.post_message(self.ListingFailed(exc))
            return
        self._keep_cursor(node)
        node.remove_children()
        wanted = self._wanted()
        for entry in entries:
            if entry.is_prefix:
                child = node.add(entry.name, data=S3Node(data.bucket, entry.key), allow_expand=True)
                if wanted is not None and wanted.key.startswith(entry.key):
                    child.expand()
            else:
                node.add_leaf(object_label(entry), data=S3Node(data.bucket, entry.key, True))
        if not entries:
            node.add_leaf("[dim](empty)[/]")
        self._put_cursor_back(node)

    def refresh_prefix(self, bucket: str, prefix: str) -> None:
        """List again the deepest loaded node above ``bucket/prefix`` (after a copy landed
        objects there), so new objects and their sizes show without F5."""
        deepest: TreeNode[S3Node] | None = None
        deepest_length = -1
        pending = [self.s3_tree.root]
        while pending:
            node = pending.pop()
            pending.extend(node.children)
            data = node.data
            if data is None or data.bucket != bucket or data.is_object or not node.children:
                continue
            if prefix.startswith(data.prefix) and len(data.prefix) > deepest_length:
                deepest, deepest_length = node, len(data.prefix)
        if deepest is not None:
            self._load_prefix(deepest)

    @on(Tree.NodeSelected, "#s3-tree")
    def _selected(self, event: Tree.NodeSelected[S3Node]) -> None:
        event.stop()
        data = event.node.data
        if data is None:
            return
        prefix = data.prefix
        if data.is_object:
            prefix = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        self.query_one("#s3-destination", Input).value = f"{data.bucket}/{prefix}"

    def cursor_location(self) -> S3Location | None:
        """What the tree's cursor names: an object, a prefix or a whole bucket."""
        node = self.s3_tree.cursor_node
        data = node.data if node is not None else None
        if data is None:
            return None
        return S3Location(bucket=data.bucket, key=data.prefix)

    def action_deliver(self, always_plan: bool = False) -> None:
        source = self.cursor_location()
        if source is None:
            self.notify("Put the cursor on an object, a prefix or a bucket first.")
            return
        self.post_message(self.DeliverRequested(source, always_plan))

    @on(Input.Changed, "#s3-destination")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.destination = event.value.strip()

    def watch_destination(self) -> None:
        header = self.query_one("#s3-header", Static)
        try:
            location = self.location()
        except UsageError as exc:
            header.update(f"[b]S3[/]  [red]{exc.message}[/]")
        else:
            where = str(location) if location else "choose a bucket"
            header.update(f"[b]S3[/]  → {where}")
        self.post_message(self.DestinationChanged(self))

    def _wanted(self) -> S3Location | None:
        try:
            return self.location()
        except UsageError:
            return None

    def location(self) -> S3Location | None:
        """The destination as an S3 location; raises ``UsageError`` when it is not valid."""
        text = self.destination.removeprefix("s3://").strip()
        if not text:
            return None
        if "/" not in text:
            text += "/"
        return parse_s3_url(f"s3://{text}")
