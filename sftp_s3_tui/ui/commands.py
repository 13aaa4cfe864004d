"""Command palette entries for the main actions."""

from __future__ import annotations

from collections.abc import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .messages import DisconnectRequested
from .screens.connect import ConnectScreen


class MainCommands(Provider):
    """Copy, transfers, pause/cancel all, profiles, theme, help."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        screen = self.screen
        connected = not isinstance(screen, ConnectScreen)

        def run(action: str) -> Callable[[], object]:
            return lambda: app.call_later(screen.run_action, action)

        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Help", "Show the keys and how it works", lambda: app.run_action("help")),
            (
                "Toggle dark / light theme",
                "Switch the colour theme",
                lambda: app.run_action("toggle_dark_light"),
            ),
        ]
        if connected:
            commands += [
                ("Copy selection here", "Queue the selected files to the destination", run("copy")),
                ("Show transfers", "The queue, chunk map and live figures", run("transfers")),
                ("Pause or resume all transfers", "", run("pause_all")),
                ("Cancel all transfers", "Unfinished uploads are aborted", run("cancel_all")),
                ("Show history", "Past runs from their manifests", run("history")),
                (
                    "Connection details",
                    "What the S3 store checks; the SFTP link's RTT and ceiling",
                    lambda: app.run_action("connection_details"),
                ),
                ("Reload listings", "List the SFTP folder and the buckets again", run("reload")),
                (
                    "Disconnect",
                    "Back to the profiles",
                    lambda: app.post_message(DisconnectRequested()),
                ),
            ]
        else:
            commands += [
                ("Connect", "Connect with the form's settings", run("connect")),
                (
                    "Test connection",
                    "Log in to SFTP and list buckets, then disconnect",
                    run("test"),
                ),
                ("Save profile", "Save the form as a profile", run("save")),
            ]
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
