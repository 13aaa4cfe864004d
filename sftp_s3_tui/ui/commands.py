"""Command palette entries for the main actions, each with the key that does it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.markup import escape

from .messages import DisconnectRequested
from .screens.connect import ConnectScreen
from .widgets.bucket_picker import BucketPicker
from .widgets.remote_tree import RemoteTree


@dataclass(frozen=True)
class Command:
    """A palette entry: its name, what it does, the key that does the same, and the call."""

    name: str
    help: str
    key: str
    run: Callable[[], object]

    def help_text(self) -> str:
        """``key c · what it does`` (as the palette's markup): the palette teaches the keys
        as it runs the commands."""
        parts = [f"key {self.key}"] if self.key else []
        parts += [self.help] if self.help else []
        return escape(" · ".join(parts))


class MainCommands(Provider):
    """Copy, plan, watch, transfers, pause/cancel all, profiles, theme, help."""

    def _commands(self) -> list[Command]:
        app = self.app
        screen = self.screen
        connected = not isinstance(screen, ConnectScreen)

        def run(action: str) -> Callable[[], object]:
            return lambda: app.call_later(screen.run_action, action)

        def on_sftp_list(action: str) -> Callable[[], object]:
            def call() -> None:
                try:
                    tree = screen.query_one(RemoteTree)
                except NoMatches:
                    return
                app.call_later(tree.run_action, action)

            return call

        def on_s3_side(action: str) -> Callable[[], object]:
            def call() -> None:
                try:
                    picker = screen.query_one(BucketPicker)
                except NoMatches:
                    return
                app.call_later(picker.run_action, action)

            return call

        commands = [
            Command("Help", "The keys, grouped by where they work", "?", run("app.help")),
            Command(
                "Toggle dark / light theme",
                "Switch the colour theme",
                "ctrl+t",
                lambda: app.run_action("toggle_dark_light"),
            ),
        ]
        if connected:
            commands += [
                Command(
                    "Copy selection here",
                    "Queue the selected files to the destination",
                    "c",
                    run("copy"),
                ),
                Command(
                    "Plan copy",
                    "What each file would do (new, skip, overwrite), then copy",
                    "C",
                    run("copy(True)"),
                ),
                Command(
                    "Deliver to the SFTP folder",
                    "Copy the S3 object or prefix under the cursor into the SFTP folder shown",
                    "d",
                    on_s3_side("deliver"),
                ),
                Command(
                    "Plan delivery",
                    "Each S3 object's SFTP path and what is there already, then deliver",
                    "D",
                    on_s3_side("deliver(True)"),
                ),
                Command(
                    "Select by glob",
                    "Select the SFTP files matching a glob (*.csv)",
                    "+",
                    on_sftp_list("select_glob"),
                ),
                Command(
                    "Watch this folder",
                    "Ship the folder's new files at every poll",
                    "w",
                    run("watch"),
                ),
                Command("Show watches", "The watches running, their polls", "W", run("watches")),
                Command(
                    "Show transfers", "The queue, chunk map and live figures", "t", run("transfers")
                ),
                Command("Pause or resume all transfers", "", "P", run("pause_all")),
                Command(
                    "Cancel all transfers", "Unfinished uploads are aborted", "X", run("cancel_all")
                ),
                Command("Show history", "Past runs from their manifests", "H", run("history")),
                Command(
                    "Connection details",
                    "What the S3 store checks; the SFTP link's RTT and ceiling",
                    "i",
                    lambda: app.run_action("connection_details"),
                ),
                Command(
                    "Reload listings",
                    "List the SFTP folder and the buckets again",
                    "f5",
                    run("reload"),
                ),
                Command(
                    "Disconnect",
                    "Back to the profiles (to save or edit one)",
                    "ctrl+d",
                    lambda: app.post_message(DisconnectRequested()),
                ),
            ]
        else:
            commands += [
                Command("Connect", "Connect with the form's settings", "ctrl+o", run("connect")),
                Command(
                    "Test connection",
                    "Log in to SFTP and list buckets, then disconnect",
                    "f4",
                    run("test"),
                ),
                Command("Save profile", "Save the form as a profile", "f2", run("save")),
                Command("Duplicate profile", "A copy under a new name", "f3", run("duplicate")),
                Command("New profile", "An empty form", "ctrl+n", run("new")),
            ]
        return commands

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.name, command.run, help=command.help_text())

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(command.name), command.run, help=command.help_text()
                )
