"""The connection form: every field of a profile, compact, with secrets as references."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Input, Label, Select, Static

from ...engine.config import HostKeyPolicy
from ...engine.errors import ConfigError
from ...profiles import (
    Profile,
    S3Settings,
    Secret,
    SecretKind,
    SftpAuth,
    SftpSettings,
)

AUTH_CHOICES = [
    ("password", SftpAuth.PASSWORD),
    ("key file", SftpAuth.KEY),
    ("ssh-agent", SftpAuth.AGENT),
]


def _placeholder(secret: Secret | None, default: str) -> str:
    if secret is None:
        return default
    if secret.kind is SecretKind.KEYRING:
        return "(saved in the system keyring; type to replace)"
    if secret.kind is SecretKind.ENV:
        return f"(from {secret.reference}; type to replace)"
    return "(typed, not saved yet)"


class ProfileForm(VerticalScroll):
    """Edit a :class:`Profile`; :meth:`profile` reads it back (raising on bad numbers)."""

    DEFAULT_CSS = """
    ProfileForm { height: auto; max-height: 1fr; padding: 0 1; }
    ProfileForm .section { margin-top: 1; text-style: bold; color: $accent; }
    ProfileForm .row { height: 1; margin-bottom: 0; }
    ProfileForm .row > Label { width: 18; color: $text-muted; }
    ProfileForm .row > Input, ProfileForm .row > Select { width: 1fr; }
    """

    def __init__(self, aws_profiles: list[str] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._aws_profiles = aws_profiles or []
        self._loaded: Profile | None = None

    def compose(self) -> ComposeResult:
        def row(label: str, widget: Input | Select[SftpAuth] | Checkbox) -> Horizontal:
            return Horizontal(Label(label), widget, classes="row")

        def field(name: str, placeholder: str = "", *, password: bool = False) -> Input:
            return Input(id=name, placeholder=placeholder, password=password, compact=True)

        yield row("Profile name", field("f-name", "name to save it under (optional)"))
        yield Static("SFTP source", classes="section")
        yield row("Host", field("f-host", "sftp.example.com"))
        yield row("Port", field("f-port", "22"))
        yield row("User", field("f-user", "user name"))
        auth: Select[SftpAuth] = Select(
            AUTH_CHOICES, value=SftpAuth.PASSWORD, allow_blank=False, id="f-auth", compact=True
        )
        yield row("Login with", auth)
        yield row("Password", field("f-password", "password, or env:VARNAME", password=True))
        yield row("Key file", field("f-key", "~/.ssh/id_ed25519"))
        yield row("Key passphrase", field("f-passphrase", "if the key is encrypted", password=True))
        yield row("known_hosts", field("f-known-hosts", "~/.ssh/known_hosts"))
        yield row("Start folder", field("f-folder", "/"))
        yield Static("S3 destination", classes="section")
        yield row("Endpoint URL", field("f-endpoint", "empty for AWS; http://host:9000 for MinIO"))
        yield row("Region", field("f-region", "us-east-1"))
        profile_input = field("f-aws-profile", "AWS profile from ~/.aws/config")
        if self._aws_profiles:
            profile_input.suggester = SuggestFromList(self._aws_profiles, case_sensitive=False)
        yield row("AWS profile", profile_input)
        yield row("Access key id", field("f-access-key", "or use an AWS profile"))
        yield row("Secret key", field("f-secret-key", "secret, or env:VARNAME", password=True))
        yield row("Path-style", Checkbox("path-style addressing", id="f-path-style", compact=True))
        yield row("Bucket", field("f-bucket", "default bucket"))
        yield row("Prefix", field("f-prefix", "default prefix, e.g. incoming/"))

    # -- profile ↔ fields ----------------------------------------------------------------------
    def _set(self, widget_id: str, value: str) -> None:
        self.query_one(f"#{widget_id}", Input).value = value

    def _get(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def load(self, profile: Profile | None) -> None:
        """Show ``profile`` (None clears the form)."""
        self._loaded = profile
        sftp = profile.sftp if profile else SftpSettings(host="")
        s3 = profile.s3 if profile else S3Settings()
        self._set("f-name", profile.name if profile else "")
        self._set("f-host", sftp.host)
        self._set("f-port", str(sftp.port) if profile else "")
        self._set("f-user", sftp.user or "")
        self.query_one("#f-auth", Select).value = sftp.auth if profile else SftpAuth.PASSWORD
        for widget_id, secret, default in (
            ("f-password", sftp.password, "password, or env:VARNAME"),
            ("f-passphrase", sftp.passphrase, "if the key is encrypted"),
            ("f-secret-key", s3.secret_access_key, "secret, or env:VARNAME"),
        ):
            widget = self.query_one(f"#{widget_id}", Input)
            literal = secret is not None and secret.kind is SecretKind.LITERAL
            widget.value = (secret.value or "") if literal and secret else ""
            widget.placeholder = _placeholder(secret, default)
        self._set("f-key", sftp.key_file or "")
        self._set("f-known-hosts", sftp.known_hosts or "")
        self._set("f-folder", sftp.remote_folder if profile else "")
        self._set("f-endpoint", s3.endpoint_url or "")
        self._set("f-region", s3.region or "")
        self._set("f-aws-profile", s3.aws_profile or "")
        self._set("f-access-key", s3.access_key_id or "")
        self.query_one("#f-path-style", Checkbox).value = s3.path_style
        self._set("f-bucket", s3.bucket or "")
        self._set("f-prefix", s3.prefix)

    def _secret(self, widget_id: str, previous: Secret | None) -> Secret | None:
        text = self.query_one(f"#{widget_id}", Input).value
        if not text:
            return previous
        if text.startswith("env:"):
            return Secret.parse(text)
        return Secret.literal(text)

    def profile(self, default_name: str = "unsaved") -> Profile:
        """The profile the form describes; raises ``ConfigError`` for an invalid field."""
        loaded = self._loaded
        port_text = self._get("f-port") or "22"
        if not port_text.isdigit():
            raise ConfigError(f"Port {port_text!r} is not a number", "e.g. 22")
        auth = self.query_one("#f-auth", Select).value
        assert isinstance(auth, SftpAuth)
        old_sftp = loaded.sftp if loaded else None
        old_s3 = loaded.s3 if loaded else None
        password = self._secret("f-password", old_sftp.password if old_sftp else None)
        passphrase = self._secret("f-passphrase", old_sftp.passphrase if old_sftp else None)
        sftp = SftpSettings(
            host=self._get("f-host"),
            port=int(port_text),
            user=self._get("f-user") or None,
            auth=auth,
            key_file=(self._get("f-key") or None) if auth is SftpAuth.KEY else None,
            passphrase=passphrase if auth is SftpAuth.KEY else None,
            password=password if auth is SftpAuth.PASSWORD else None,
            known_hosts=self._get("f-known-hosts") or None,
            host_key_policy=old_sftp.host_key_policy if old_sftp else HostKeyPolicy.STRICT,
            remote_folder=self._get("f-folder") or "/",
        )
        access_key = self._get("f-access-key") or None
        secret_key = self._secret("f-secret-key", old_s3.secret_access_key if old_s3 else None)
        s3 = S3Settings(
            aws_profile=self._get("f-aws-profile") or None,
            access_key_id=access_key,
            secret_access_key=secret_key if access_key else None,
            region=self._get("f-region") or None,
            endpoint_url=self._get("f-endpoint") or None,
            path_style=self.query_one("#f-path-style", Checkbox).value,
            bucket=self._get("f-bucket") or None,
            prefix=self._get("f-prefix"),
        )
        if old_s3 is not None:
            s3 = replace(
                s3,
                storage_class=old_s3.storage_class,
                server_side_encryption=old_s3.server_side_encryption,
                verify_tls=old_s3.verify_tls,  # e.g. --no-verify-tls: not a form field yet
            )
        transfer = loaded.transfer if loaded else Profile(name="x", sftp=sftp).transfer
        return Profile(
            name=self._get("f-name") or default_name, sftp=sftp, s3=s3, transfer=transfer
        )
