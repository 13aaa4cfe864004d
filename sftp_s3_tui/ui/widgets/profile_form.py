"""The connection form: every field of a profile, compact, with secrets as references."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from ...engine.config import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ChecksumChoice,
    ConflictPolicy,
    HostKeyPolicy,
    SftpEndpoint,
    TransferOptions,
    check_endpoint_url,
    check_region,
)
from ...engine.errors import ConfigError, TransferError, UsageError
from ...engine.object_options import ObjectOptions, parse_pairs
from ...engine.units import format_rate_limit, format_size, parse_rate, parse_size
from ...profiles import (
    DeliverySettings,
    NotifySettings,
    Profile,
    S3Settings,
    Secret,
    SecretKind,
    SftpAuth,
    SftpSettings,
    TransferDefaults,
)
from .secret_input import SecretInput

AUTH_CHOICES = [
    ("password", SftpAuth.PASSWORD),
    ("key file", SftpAuth.KEY),
    ("ssh-agent", SftpAuth.AGENT),
]


HOST_KEY_CHOICES = [
    ("ask (known_hosts, strict)", HostKeyPolicy.STRICT),
    ("accept new keys (trust on first use)", HostKeyPolicy.ACCEPT_NEW),
]
CONFLICT_CHOICES = [
    ("overwrite", ConflictPolicy.OVERWRITE),
    ("skip existing", ConflictPolicy.SKIP_EXISTING),
    ("if newer", ConflictPolicy.IF_NEWER),
    ("if different", ConflictPolicy.IF_DIFFERENT),
]
SSE_CHOICES = [
    ("AES256 (S3-managed keys)", "AES256"),
    ("aws:kms", "aws:kms"),
    ("aws:kms:dsse (dual-layer)", "aws:kms:dsse"),
]
STORAGE_CLASSES = [
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
]
#: Inputs that only apply to one login method.
ONLY_FOR = {
    "f-password": SftpAuth.PASSWORD,
    "f-key": SftpAuth.KEY,
    "f-passphrase": SftpAuth.KEY,
}
#: Transfer defaults: input id, TransferDefaults field, label, placeholder, is a size.
TRANSFER_FIELDS = [
    ("f-part-size", "part_size", "Part size", "8MiB (5MiB – 5GiB)", True),
    ("f-memory", "memory_budget", "Memory budget", "512MiB: all part buffers together", True),
    ("f-parts-in-flight", "parts_in_flight", "Parts in flight", "8 per file", False),
    (
        "f-sftp-concurrency",
        "sftp_concurrency",
        "SFTP requests",
        f"{TransferOptions.sftp_concurrency} at once",
        False,
    ),
    (
        "f-s3-concurrency",
        "s3_concurrency",
        "S3 uploads",
        f"{TransferOptions.s3_concurrency} at once",
        False,
    ),
]
#: The SFTP link: input id, SftpSettings field, label, placeholder, kind (int, size, rate).
LINK_FIELDS = [
    ("f-connections", "connections", "Connections", "4 SSH connections to the host at most", "int"),
    ("f-window", "window", "SSH window", "16MiB per connection (≥ bandwidth × RTT)", "size"),
    ("f-bwlimit", "bwlimit", "Bandwidth limit", "empty: unlimited; 20M = 20 MB/s", "rate"),
]
#: Profile fields (as ``Profile.validate`` and the engine name them) → the form's labels.
LABELS = {
    "sftp.port": "Port",
    "sftp.connections": "Connections",
    "sftp.window": "SSH window",
    "sftp.bwlimit": "Bandwidth limit",
    "sftp.jump": "Jump host",
    "s3.endpoint_url": "Endpoint URL",
    "s3.region": "Region",
    "s3.storage_class": "Storage class",
    "s3.server_side_encryption": "Encryption (SSE)",
    "s3.sse_kms_key_id": "KMS key id",
    "s3.tags": "Tags",
    "s3.metadata": "Metadata",
    **{f"transfer.{name}": label for _, name, label, _, _ in TRANSFER_FIELDS},
}
#: Which input shows each profile field (marked when the field is wrong).
WIDGET_OF = {
    "sftp.port": "f-port",
    "sftp.jump": "f-jump",
    "s3.endpoint_url": "f-endpoint",
    "s3.region": "f-region",
    "s3.storage_class": "f-storage-class",
    "s3.sse_kms_key_id": "f-kms-key",
    "s3.tags": "f-tags",
    "s3.metadata": "f-metadata",
    **{f"sftp.{name}": widget_id for widget_id, name, _, _, _ in LINK_FIELDS},
    **{f"transfer.{name}": widget_id for widget_id, name, _, _, _ in TRANSFER_FIELDS},
}


class OnOffCheckbox(Checkbox):
    """A checkbox whose box is empty when off (the compact one shows a dim X either way)."""

    BUTTON_INNER = " "

    def on_mount(self) -> None:
        self.BUTTON_INNER = "✓" if self.value else " "
        self.refresh()

    def watch_value(self) -> None:
        self.BUTTON_INNER = "✓" if self.value else " "
        super().watch_value()
        self.refresh()


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
    ProfileForm { height: 1fr; padding: 0 1; }
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
        def row(label: str, widget: Widget) -> Horizontal:
            return Horizontal(Label(label), widget, classes="row")

        def field(name: str, placeholder: str = "", *, password: bool = False) -> Input:
            if password:  # never in TEXTUAL_LOG, reprs or messages (see SecretInput)
                return SecretInput(id=name, placeholder=placeholder, compact=True)
            return Input(id=name, placeholder=placeholder, compact=True)

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
        host_keys: Select[HostKeyPolicy] = Select(
            HOST_KEY_CHOICES,
            value=HostKeyPolicy.STRICT,
            allow_blank=False,
            id="f-host-key-policy",
            compact=True,
        )
        yield row("Unknown host key", host_keys)
        yield row("Jump host", field("f-jump", "[user@]bastion[:port], optional"))
        yield row("Start folder", field("f-folder", "/"))
        yield row(
            "Symlinked folders",
            OnOffCheckbox("descend into linked folders", id="f-follow-symlinks", compact=True),
        )
        for widget_id, _, label, placeholder, _ in LINK_FIELDS:
            yield row(label, field(widget_id, placeholder))
        yield Static("S3 destination", classes="section")
        yield row("Endpoint URL", field("f-endpoint", "empty for AWS; http://host:9000 for MinIO"))
        yield row("Region", field("f-region", "us-east-1"))
        profile_input = field("f-aws-profile", "AWS profile from ~/.aws/config")
        if self._aws_profiles:
            profile_input.suggester = SuggestFromList(self._aws_profiles, case_sensitive=False)
        yield row("AWS profile", profile_input)
        yield row("Access key id", field("f-access-key", "or use an AWS profile"))
        yield row("Secret key", field("f-secret-key", "secret, or env:VARNAME", password=True))
        yield row(
            "Path-style", OnOffCheckbox("path-style addressing", id="f-path-style", compact=True)
        )
        yield row(
            "Verify TLS",
            OnOffCheckbox(
                "check the endpoint's certificate", value=True, id="f-verify-tls", compact=True
            ),
        )
        yield row("Bucket", field("f-bucket", "default bucket"))
        yield row("Prefix", field("f-prefix", "default prefix, e.g. incoming/"))
        storage = field("f-storage-class", "empty: the bucket's default (STANDARD)")
        storage.suggester = SuggestFromList(STORAGE_CLASSES, case_sensitive=False)
        yield row("Storage class", storage)
        sse: Select[str] = Select(
            SSE_CHOICES, prompt="none (the bucket's default)", id="f-sse", compact=True
        )
        yield row("Encryption (SSE)", sse)
        yield row("KMS key id", field("f-kms-key", "with aws:kms: key id or ARN (empty: default)"))
        yield row("Content type", field("f-content-type", "empty: guessed from each file's name"))
        yield row("Tags", field("f-tags", "key=value, key=value"))
        yield row("Metadata", field("f-metadata", "key=value, key=value (x-amz-meta-*)"))
        yield Static("Transfer defaults", classes="section")
        conflict: Select[ConflictPolicy] = Select(
            CONFLICT_CHOICES, prompt="overwrite (default)", id="f-conflict", compact=True
        )
        yield row("Existing keys", conflict)
        checksum: Select[ChecksumChoice] = Select(
            [(choice.value, choice) for choice in ChecksumChoice],
            prompt="auto (the strongest the store checks)",
            id="f-checksum",
            compact=True,
        )
        yield row("Checksum", checksum)
        for widget_id, _, label, placeholder, _ in TRANSFER_FIELDS:
            yield row(label, field(widget_id, placeholder))
        # The checks of a delivery (d / D in the bucket pane) are the profile's, not asked at
        # each start: they belong to the partner's server (a flaky one gets read-back) and
        # the delivery keys start at once, with no options dialog to put them in.
        yield Static("Deliveries (S3 → SFTP)", classes="section")
        yield row(
            "Read back",
            OnOffCheckbox(
                "read each file back, compare SHA-256", id="f-verify-readback", compact=True
            ),
        )
        yield row(
            "Server hash",
            OnOffCheckbox(
                "ask the server for its SHA-256", id="f-verify-server-hash", compact=True
            ),
        )

    @on(Select.Changed, "#f-auth")
    def _auth_changed(self, event: Select.Changed) -> None:
        self._apply_auth(event.value)

    def _apply_auth(self, auth: object) -> None:
        """Disable the inputs the chosen login does not use (Tab then skips them)."""
        for widget_id, needs in ONLY_FOR.items():
            self.query_one(f"#{widget_id}", Input).disabled = auth is not needs

    @on(Select.Changed, "#f-sse")
    def _sse_changed(self, event: Select.Changed) -> None:
        self._apply_sse(event.value)

    def _apply_sse(self, sse: object) -> None:
        """The KMS key id only applies to SSE-KMS."""
        kms = isinstance(sse, str) and sse.startswith("aws:kms")
        self.query_one("#f-kms-key", Input).disabled = not kms

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
        self._set("f-storage-class", s3.storage_class or "")
        sse = s3.server_side_encryption or ("aws:kms" if s3.sse_kms_key_id else None)
        self._choose("#f-sse", sse)
        self._set("f-kms-key", s3.sse_kms_key_id or "")
        self._set("f-content-type", s3.content_type or "")
        self._set("f-tags", _pairs_text(s3.tags))
        self._set("f-metadata", _pairs_text(s3.metadata))
        self.query_one("#f-host-key-policy", Select).value = sftp.host_key_policy
        self._set("f-jump", sftp.jump or "")
        self.query_one("#f-follow-symlinks", Checkbox).value = sftp.follow_symlinks
        for widget_id, name, _, _, kind in LINK_FIELDS:
            value = getattr(sftp, name)
            self._set(widget_id, "" if value is None else _link_text(kind, value))
        transfer = profile.transfer if profile else TransferDefaults()
        self._choose("#f-conflict", transfer.conflict)
        self._choose("#f-checksum", transfer.checksum)
        self.query_one("#f-verify-tls", Checkbox).value = s3.verify_tls
        delivery = profile.delivery if profile else DeliverySettings()
        self.query_one("#f-verify-readback", Checkbox).value = delivery.verify_readback
        self.query_one("#f-verify-server-hash", Checkbox).value = delivery.verify_server_hash
        for widget_id, name, _, _, is_size in TRANSFER_FIELDS:
            value = getattr(transfer, name)
            text = "" if value is None else format_size(value) if is_size else str(value)
            self._set(widget_id, text.replace(" ", ""))
        self._apply_auth(self.query_one("#f-auth", Select).value)
        self._apply_sse(sse)
        self._mark({})

    def _choose(self, selector: str, value: object) -> None:
        select = self.query_one(selector, Select)
        if value is None:
            select.clear()
        else:
            select.value = value

    def _transfer(self, loaded: TransferDefaults, problems: dict[str, str]) -> TransferDefaults:
        changes: dict[str, Any] = {}
        for widget_id, name, _label, _, is_size in TRANSFER_FIELDS:
            text = self._get(widget_id)
            if not text:
                changes[name] = None
            elif is_size:
                try:
                    changes[name] = parse_size(text)
                except UsageError as exc:
                    problems[f"transfer.{name}"] = exc.message
            elif text.isdigit() and int(text) > 0:
                changes[name] = int(text)
            else:
                problems[f"transfer.{name}"] = f"{text!r} is not a whole number (e.g. 8)"
        conflict = self.query_one("#f-conflict", Select).value
        changes["conflict"] = conflict if isinstance(conflict, ConflictPolicy) else None
        checksum = self.query_one("#f-checksum", Select).value
        changes["checksum"] = checksum if isinstance(checksum, ChecksumChoice) else None
        return replace(
            loaded, **{k: v for k, v in changes.items() if f"transfer.{k}" not in problems}
        )

    def _link(self, problems: dict[str, str]) -> dict[str, Any]:
        """The SFTP link fields (connections, window, bandwidth limit) as typed."""
        values: dict[str, Any] = {}
        for widget_id, name, _, _, kind in LINK_FIELDS:
            text = self._get(widget_id)
            if not text:
                values[name] = None
                continue
            try:
                if kind == "int":
                    if not text.isdigit():
                        raise UsageError(f"{text!r} is not a whole number", "")
                    values[name] = int(text)
                elif kind == "size":
                    values[name] = parse_size(text)
                else:
                    values[name] = parse_rate(text, "")
            except UsageError as exc:
                problems[f"sftp.{name}"] = exc.message.strip()
        return values

    def _pairs(
        self, widget_id: str, what: str, problems: dict[str, str]
    ) -> tuple[tuple[str, str], ...]:
        text = self._get(widget_id)
        items = [item.strip() for item in text.split(",") if item.strip()]
        try:
            return parse_pairs(items, what.lower())
        except UsageError as exc:
            problems[f"s3.{what.lower()}"] = exc.message.replace(f"{what.lower()} ", "", 1)
            return ()

    def _secret(self, widget_id: str, previous: Secret | None) -> Secret | None:
        text = self.query_one(f"#{widget_id}", Input).value
        if not text:
            return previous
        if text.startswith("env:"):
            return Secret.parse(text)
        return Secret.literal(text)

    def profile(self, default_name: str = "unsaved") -> Profile:
        """The profile the form describes; raises ``ConfigError`` naming every invalid field
        (one line each, in the form's words), and marks those inputs."""
        loaded = self._loaded
        problems: dict[str, str] = {}
        port_text = self._get("f-port") or "22"
        if not port_text.isdigit():
            problems["sftp.port"] = f"{port_text!r} is not a number (e.g. 22)"
        auth = self.query_one("#f-auth", Select).value
        assert isinstance(auth, SftpAuth)
        old_sftp = loaded.sftp if loaded else None
        old_s3 = loaded.s3 if loaded else None
        password = self._secret("f-password", old_sftp.password if old_sftp else None)
        passphrase = self._secret("f-passphrase", old_sftp.passphrase if old_sftp else None)
        host_key_policy = self.query_one("#f-host-key-policy", Select).value
        link = self._link(problems)
        # replace() on what was loaded keeps any field this form does not show
        sftp = replace(
            old_sftp or SftpSettings(host=""),
            host=self._get("f-host"),
            port=int(port_text) if port_text.isdigit() else 22,
            user=self._get("f-user") or None,
            auth=auth,
            key_file=(self._get("f-key") or None) if auth is SftpAuth.KEY else None,
            passphrase=passphrase if auth is SftpAuth.KEY else None,
            password=password if auth is SftpAuth.PASSWORD else None,
            known_hosts=self._get("f-known-hosts") or None,
            host_key_policy=host_key_policy
            if isinstance(host_key_policy, HostKeyPolicy)
            else HostKeyPolicy.STRICT,
            remote_folder=self._get("f-folder") or "/",
            jump=self._get("f-jump") or None,
            follow_symlinks=self.query_one("#f-follow-symlinks", Checkbox).value,
            **{name: value for name, value in link.items() if f"sftp.{name}" not in problems},
        )
        access_key = self._get("f-access-key") or None
        secret_key = self._secret("f-secret-key", old_s3.secret_access_key if old_s3 else None)
        sse = self.query_one("#f-sse", Select).value
        sse_text = sse if isinstance(sse, str) else None
        s3 = replace(
            old_s3 or S3Settings(),
            aws_profile=self._get("f-aws-profile") or None,
            access_key_id=access_key,
            secret_access_key=secret_key if access_key else None,
            region=self._get("f-region") or None,
            endpoint_url=self._get("f-endpoint") or None,
            path_style=self.query_one("#f-path-style", Checkbox).value,
            verify_tls=self.query_one("#f-verify-tls", Checkbox).value,
            bucket=self._get("f-bucket") or None,
            prefix=self._get("f-prefix"),
            storage_class=self._get("f-storage-class").upper() or None,
            server_side_encryption=sse_text,
            sse_kms_key_id=(self._get("f-kms-key") or None)
            if sse_text and sse_text.startswith("aws:kms")
            else None,
            content_type=self._get("f-content-type") or None,
            tags=self._pairs("f-tags", "Tags", problems),
            metadata=self._pairs("f-metadata", "Metadata", problems),
        )
        transfer = self._transfer(loaded.transfer if loaded else TransferDefaults(), problems)
        delivery = DeliverySettings(
            verify_readback=self.query_one("#f-verify-readback", Checkbox).value,
            verify_server_hash=self.query_one("#f-verify-server-hash", Checkbox).value,
        )
        profile = Profile(
            name=self._get("f-name") or default_name,
            sftp=sftp,
            s3=s3,
            transfer=transfer,
            notify=loaded.notify if loaded else NotifySettings(),  # not shown: kept
            delivery=delivery,
        )
        for key, message in field_problems(profile):
            problems.setdefault(key, message)
        self._mark(problems)
        if problems:
            lines = [f"{LABELS.get(key, key)}: {message}" for key, message in problems.items()]
            raise ConfigError(
                "\n".join(lines),
                "correct the field(s) above; nothing was saved or connected",
            )
        return profile

    def _mark(self, problems: dict[str, str]) -> None:
        """Flag the inputs of the invalid fields (and clear the others)."""
        wrong = {WIDGET_OF.get(key) for key in problems}
        for widget_id in set(WIDGET_OF.values()):
            self.query_one(f"#{widget_id}", Input).set_class(widget_id in wrong, "-invalid")


def field_problems(profile: Profile) -> list[tuple[str, str]]:
    """What is wrong with the fields the form edits, by profile field, through the engine's
    own checks (the link's, the object options', the transfer options'): one message per
    field. Missing host, key file or bucket are told when connecting."""
    found: list[tuple[str, str]] = []
    sftp, s3 = profile.sftp, profile.s3
    link = SftpEndpoint(host=sftp.host or "-", **sftp.link_fields())
    names = {"window_bytes": "window", "bwlimit_bytes_per_second": "bwlimit"}
    for key, message in link.link_problems():
        found.append((f"sftp.{names.get(key, key)}", message))
    for key, check in (("endpoint_url", check_endpoint_url), ("region", check_region)):
        try:
            check(getattr(s3, key), "")
        except UsageError as exc:
            found.append((f"s3.{key}", exc.message.strip()))
    for key, build in (
        ("storage_class", lambda: ObjectOptions.build(storage_class=s3.storage_class)),
        (
            "sse_kms_key_id",
            lambda: ObjectOptions.build(
                sse=s3.server_side_encryption, sse_kms_key_id=s3.sse_kms_key_id
            ),
        ),
        ("tags", lambda: ObjectOptions.build(tags=dict(s3.tags))),
        ("metadata", lambda: ObjectOptions.build(metadata=dict(s3.metadata))),
    ):
        try:
            build()
        except UsageError as exc:
            found.append((f"s3.{key}", f"{exc.message} ({exc.hint})" if exc.hint else exc.message))
    transfer = profile.transfer
    if transfer.part_size is not None and not (
        MIN_PART_SIZE <= transfer.part_size <= MAX_PART_SIZE
    ):
        found.append(("transfer.part_size", "must be from 5MiB to 5GiB"))
    else:
        try:
            options = profile.transfer_options()
        except TransferError as exc:
            found.append(("transfer", exc.message))
        else:
            for key, message in options.problems():
                found.append((f"transfer.{key}", message))
    return found


def _pairs_text(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{key}={value}" for key, value in pairs)


def _link_text(kind: str, value: int) -> str:
    if kind == "size":
        return format_size(value).replace(" ", "").replace(".0", "")
    if kind == "rate":
        return format_rate_limit(value)
    return str(value)
