"""Pick a saved profile (or an ~/.ssh/config host), edit it, test it, connect."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from ...engine.errors import TransferError
from ...profiles import Profile, ProfileStore, SshHost
from ..messages import ConnectRequested, ErrorRaised
from ..widgets.profile_form import ProfileForm
from ..widgets.title_header import TitleHeader
from .dialogs import ConfirmScreen, PromptScreen
from .help import HELP_KEY


class ConnectScreen(Screen[None]):
    """Saved profiles on the left, the selected one's fields on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        HELP_KEY,
        Binding(
            "ctrl+o",
            "connect",
            "Connect",
            key_display="^o",
            tooltip="connect with the form's settings",
        ),
        Binding("f2", "save", "Save profile", tooltip="save the form as a profile"),
        Binding("f3", "duplicate", "Duplicate", tooltip="a copy of this profile under a new name"),
        Binding("f4", "test", "Test", tooltip="log in to SFTP and list buckets, then disconnect"),
        Binding("f8", "delete", "Delete", tooltip="delete the selected profile"),
        Binding("ctrl+n", "new", "New", key_display="^n", tooltip="an empty form"),
    ]

    status: reactive[Text | str] = reactive("")

    def __init__(
        self,
        store: ProfileStore,
        ssh_hosts: list[SshHost] | None = None,
        aws_profiles: list[str] | None = None,
        initial: Profile | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.ssh_hosts = ssh_hosts or []
        self.aws_profiles = aws_profiles or []
        self.initial = initial

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        with Horizontal(id="connect-body"):
            with Vertical(id="profile-pane"):
                yield Static("Profiles", classes="pane-title")
                yield OptionList(id="profile-list")
                yield Static("enter: connect · F3 duplicate · F8 delete", classes="pane-hint")
            with Vertical(id="editor-pane"):
                yield Static("Connection", classes="pane-title")
                yield ProfileForm(self.aws_profiles, id="profile-form")
                with Horizontal(id="connect-buttons"):
                    yield Button("Connect", variant="primary", id="connect")
                    yield Button("Test", id="test")
                    yield Button("Save", id="save")
                    yield Button("Duplicate", id="duplicate")
                    yield Button("Delete", variant="error", id="delete")
                    yield Button("New", id="new")
                yield Static("", id="connect-status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_profiles(select=self.initial.name if self.initial else None)
        form = self.query_one(ProfileForm)
        if self.initial is not None:
            form.load(self.initial)
        elif self.store.profiles:
            form.load(next(iter(self.store.profiles.values())))
        else:
            form.load(None)
        self.query_one("#f-host", Input).focus() if not self.store.profiles else self.query_one(
            "#profile-list"
        ).focus()

    def watch_status(self, status: Text | str) -> None:
        if self.is_mounted:
            self.query_one("#connect-status", Static).update(status)

    # the list -------------------------------------------------------------------------------
    def refresh_profiles(self, select: str | None = None) -> None:
        """Re-read the profile list (saved profiles, then ~/.ssh/config hosts)."""
        option_list = self.query_one("#profile-list", OptionList)
        option_list.clear_options()
        options: list[Option | None] = []
        for name, profile in self.store.profiles.items():
            label = Text.assemble((name, "bold"), "\n", (profile.sftp.host, "dim"))
            options.append(Option(label, id=f"p:{name}"))
        if not options:
            options.append(Option(Text("no saved profiles yet", "dim italic"), disabled=True))
        if self.ssh_hosts:
            options.append(None)
            options.append(Option(Text("from ~/.ssh/config", "italic"), disabled=True))
            for host in self.ssh_hosts:
                label = Text.assemble((host.alias, "bold"), "\n", (host.hostname, "dim"))
                options.append(Option(label, id=f"ssh:{host.alias}"))
        option_list.add_options(options)
        if select is None and self.store.profiles:
            select = next(iter(self.store.profiles))
        if select is not None:
            with contextlib.suppress(OptionDoesNotExist):
                option_list.highlighted = option_list.get_option_index(f"p:{select}")

    def _profile_for(self, option_id: str | None) -> Profile | None:
        if option_id is None:
            return None
        kind, _, name = option_id.partition(":")
        if kind == "p":
            return self.store.profiles.get(name)
        host = next((h for h in self.ssh_hosts if h.alias == name), None)
        return host.to_profile() if host else None

    @on(OptionList.OptionHighlighted, "#profile-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        profile = self._profile_for(event.option.id)
        if profile is not None:
            self.query_one(ProfileForm).load(profile)

    @on(OptionList.OptionSelected, "#profile-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        profile = self._profile_for(event.option.id)
        if profile is not None:
            self.query_one(ProfileForm).load(profile)
            self.action_connect()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("f-"):
            self.action_connect()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.run_action(event.button.id or "")

    # actions --------------------------------------------------------------------------------
    def _form_profile(self) -> Profile | None:
        try:
            return self.query_one(ProfileForm).profile()
        except TransferError as exc:
            self.post_message(ErrorRaised(exc, modal=True))
            return None

    def action_connect(self) -> None:
        profile = self._form_profile()
        if profile is not None:
            self.post_message(ConnectRequested(profile))

    def action_test(self) -> None:
        profile = self._form_profile()
        if profile is not None:
            self.post_message(ConnectRequested(profile, test_only=True))

    def action_new(self) -> None:
        self.query_one(ProfileForm).load(None)
        self.query_one("#f-name", Input).focus()

    def action_save(self) -> None:
        form = self.query_one(ProfileForm)
        name = form.query_one("#f-name", Input).value.strip()
        if not name:
            self.notify("Give the profile a name first.", severity="warning")
            form.query_one("#f-name", Input).focus()
            return
        profile = self._form_profile()
        if profile is None:
            return
        try:
            stored = self.store.save(profile)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc, modal=True))
            return
        self.store.load()
        form.load(stored)
        self.refresh_profiles(select=stored.name)
        self.notify(f"Saved profile {stored.name!r} to {self.store.path}")

    def _selected_name(self) -> str | None:
        option_list = self.query_one("#profile-list", OptionList)
        if option_list.highlighted is None:
            return None
        option_id = option_list.get_option_at_index(option_list.highlighted).id or ""
        return option_id[2:] if option_id.startswith("p:") else None

    @work(exclusive=True, group="profile-edit", exit_on_error=False)
    async def action_duplicate(self) -> None:
        name = self._selected_name()
        if name is None:
            self.notify("Select a saved profile to duplicate.", severity="warning")
            return
        new_name = await self.app.push_screen_wait(
            PromptScreen(f"Duplicate {name!r} as", value=f"{name} copy")
        )
        if not new_name:
            return
        try:
            self.store.duplicate(name, new_name)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc, modal=True))
            return
        self.store.load()
        self.refresh_profiles(select=new_name)
        self.notify(f"Duplicated {name!r} as {new_name!r}")

    @work(exclusive=True, group="profile-edit", exit_on_error=False)
    async def action_delete(self) -> None:
        name = self._selected_name()
        if name is None:
            self.notify("Select a saved profile to delete.", severity="warning")
            return
        sure = await self.app.push_screen_wait(
            ConfirmScreen(
                "Delete profile?",
                f"Delete {name!r} and its secrets in the keyring? This cannot be undone.",
                yes="Delete",
                no="Keep",
            )
        )
        if not sure:
            return
        try:
            self.store.delete(name)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc, modal=True))
            return
        self.store.load()
        self.refresh_profiles()
        self.query_one(ProfileForm).load(next(iter(self.store.profiles.values()), None))
        self.notify(f"Deleted profile {name!r}")
