"""Connection profiles: what a user saves is what they get back, and no secret leaks."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend

from sftp_s3_tui import paths, profiles
from sftp_s3_tui.engine import durable as atomic
from sftp_s3_tui.engine.addresses import S3Location
from sftp_s3_tui.engine.config import (
    ConflictPolicy,
    HostKeyPolicy,
    MiB,
    TransferOptions,
)
from sftp_s3_tui.engine.errors import ConfigError
from sftp_s3_tui.profiles import (
    DeliverySettings,
    Profile,
    ProfileStore,
    S3Settings,
    Secret,
    SecretKind,
    SftpAuth,
    SftpSettings,
    TransferDefaults,
    import_aws_profiles,
    import_ssh_config,
)
from sftp_s3_tui.redaction import RedactingFilter, redact, register_secret

PASSWORD = "correct-horse-battery-staple-42"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps entries in a dict, like a desktop keyring would on disk."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError(username)
        del self.entries[(service, username)]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and every XDG directory into tmp_path: the real home is never touched."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    for variable in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture(autouse=True)
def no_keyring() -> Iterator[None]:
    """No keyring unless a test asks for one: a developer's desktop keyring is never touched."""
    original = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(original)


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def full_profile(name: str = "partner drop") -> Profile:
    """A profile with every field set away from its default."""
    return Profile(
        name=name,
        sftp=SftpSettings(
            host="sftp.partner.example",
            port=2222,
            user="etl",
            auth=SftpAuth.KEY,
            key_file="~/.ssh/id_partner",
            passphrase=Secret.from_env("PARTNER_KEY_PASSPHRASE"),
            known_hosts="~/.ssh/known_hosts_partner",
            host_key_policy=HostKeyPolicy.ACCEPT_NEW,
            remote_folder="/exports/daily",
        ),
        s3=S3Settings(
            access_key_id="AKIAEXAMPLE",
            secret_access_key=Secret.from_env("PARTNER_S3_SECRET"),
            region="eu-west-1",
            endpoint_url="http://minio.internal:9000",
            path_style=True,
            bucket="landing",
            prefix="partner/2026-11/",
            storage_class="STANDARD_IA",
            server_side_encryption="aws:kms",
        ),
        transfer=TransferDefaults(
            part_size=64 * MiB,
            memory_budget=1024 * MiB,
            parts_in_flight=4,
            sftp_concurrency=6,
            s3_concurrency=12,
            conflict=ConflictPolicy.IF_NEWER,
        ),
        delivery=DeliverySettings(verify_readback=True, verify_server_hash=True),
    )


def password_profile(name: str = "ops", password: Secret | None = None) -> Profile:
    return Profile(
        name=name,
        sftp=SftpSettings(
            host="10.0.0.5",
            user="ops",
            auth=SftpAuth.PASSWORD,
            password=password or Secret.literal(PASSWORD),
        ),
        s3=S3Settings(access_key_id="AKIAOPS", secret_access_key=Secret.literal(S3_SECRET)),
    )


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- paths -------------------------------------------------------------------------------------


def test_paths_follow_xdg_variables(tmp_path: Path) -> None:
    assert paths.config_dir() == tmp_path / "xdg_config_home" / "sftp-s3-tui"
    assert paths.profiles_file() == tmp_path / "xdg_config_home" / "sftp-s3-tui" / "profiles.toml"
    assert paths.state_dir() == tmp_path / "xdg_state_home" / "sftp-s3-tui"
    assert paths.journal_dir() == paths.state_dir() / "journal"
    assert paths.log_dir().is_relative_to(tmp_path)


# --- saving and loading ------------------------------------------------------------------------


def test_every_field_survives_a_round_trip() -> None:
    store = ProfileStore()
    keys = full_profile()
    by_aws_profile = Profile(
        name="aws",
        sftp=SftpSettings(host="h", auth=SftpAuth.AGENT),
        s3=S3Settings(aws_profile="prod", region="us-east-1", bucket="b-1"),
    )
    assert store.save(keys) == keys
    assert store.save(by_aws_profile) == by_aws_profile

    loaded, problems = ProfileStore().load()

    assert problems == []
    assert loaded == {"partner drop": keys, "aws": by_aws_profile}
    text = store.path.read_text()
    assert 'part_size = "64MiB"' in text
    assert 'memory_budget = "1GiB"' in text
    assert 'passphrase = "env:PARTNER_KEY_PASSPHRASE"' in text


def test_hand_written_sizes_and_minimal_profile_load() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(
        '[profiles.min.sftp]\nhost = "h"\n\n'
        "[profiles.min.transfer]\npart_size = 16777216\nmemory_budget = '256 MiB'\n"
    )
    loaded, problems = store.load()
    assert problems == []
    assert loaded["min"].transfer == TransferDefaults(part_size=16 * MiB, memory_budget=256 * MiB)
    assert loaded["min"].sftp.auth is SftpAuth.AGENT


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_file_is_0600_and_directory_0700_whatever_the_umask(umask: int) -> None:
    store = ProfileStore()
    old_umask = os.umask(umask)
    try:
        store.save(full_profile())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_a_loose_file_mode_is_tightened_on_save() -> None:
    store = ProfileStore()
    store.save(full_profile())
    store.path.chmod(0o644)
    store.save(full_profile("second"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_blank_form_fields_are_saved_as_unset() -> None:
    typed = Profile(
        name=" nightly ",
        sftp=SftpSettings(host=" sftp.example ", user="", key_file="", remote_folder=""),
        s3=S3Settings(region=" ", bucket="landing", prefix=""),
    )
    stored = ProfileStore().save(typed)
    expected = Profile(
        name="nightly",
        sftp=SftpSettings(host="sftp.example"),
        s3=S3Settings(bucket="landing"),
    )
    assert stored == expected
    assert ProfileStore().load().profiles == {"nightly": expected}
    assert expected.describe() == "sftp://sftp.example/ → s3://landing/"


def test_existing_name_is_refused_when_not_overwriting() -> None:
    store = ProfileStore()
    store.save(full_profile())
    with pytest.raises(ConfigError, match="already exists"):
        store.save(full_profile(), overwrite=False)


def test_an_invalid_profile_is_not_saved_and_the_message_names_the_field() -> None:
    store = ProfileStore()
    broken = Profile(name="k", sftp=SftpSettings(host="h", auth=SftpAuth.KEY))
    with pytest.raises(ConfigError, match=r"sftp\.key_file: is required when auth is 'key'"):
        store.save(broken)
    with pytest.raises(ConfigError, match="not saved"):
        store.save(Profile(name="a/b", sftp=SftpSettings(host="h")))
    assert not store.path.exists()


# --- secrets -----------------------------------------------------------------------------------


def test_literal_secrets_go_to_the_keyring_never_to_the_file_or_logs(
    memory_keyring: MemoryKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = ProfileStore()

    stored = store.save(password_profile())
    loaded, _ = ProfileStore().load()
    sftp = loaded["ops"].sftp_endpoint()
    s3 = loaded["ops"].s3_endpoint()

    raw = store.path.read_bytes()
    for secret in (PASSWORD, S3_SECRET):
        assert secret.encode() not in raw
        assert secret not in caplog.text
        assert all(secret not in r.getMessage() for r in caplog.records)
        assert secret not in repr(stored) + repr(sftp) + repr(s3)
    assert "Saved profile 'ops'" in caplog.text  # the logs were captured, and are clean
    assert stored.sftp.password == Secret.in_keyring()
    assert b'password = "keyring:"' in raw
    assert memory_keyring.entries == {
        ("sftp-s3-tui", "ops/sftp.password"): PASSWORD,
        ("sftp-s3-tui", "ops/s3.secret_access_key"): S3_SECRET,
    }
    assert (sftp.password, sftp.use_agent) == (PASSWORD, False)
    assert s3.secret_access_key == S3_SECRET


def test_without_a_keyring_a_literal_secret_is_refused_and_the_file_kept() -> None:
    store = ProfileStore()
    store.save(full_profile())
    before = store.path.read_bytes()

    with pytest.raises(ConfigError) as caught:
        store.save(password_profile())

    message = str(caught.value)
    assert "No working system keyring" in message
    assert "env:VARNAME" in message
    assert "ssh-agent" in message
    assert PASSWORD not in message
    assert store.path.read_bytes() == before
    assert profiles.keyring_available() is False


def test_a_keyring_that_drops_values_counts_as_no_keyring(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password = lambda *args: None  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="did not keep the value"):
        ProfileStore().save(password_profile())
    assert not ProfileStore().path.exists()


def test_env_references_resolve_at_use_time(monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProfileStore()
    store.save(full_profile())
    profile = ProfileStore().load().profiles["partner drop"]

    monkeypatch.setenv("PARTNER_KEY_PASSPHRASE", "pass-phrase-1")
    monkeypatch.setenv("PARTNER_S3_SECRET", "s3-secret-1")
    sftp = profile.sftp_endpoint()
    assert sftp.passphrase == "pass-phrase-1"
    assert profile.s3_endpoint().secret_access_key == "s3-secret-1"

    monkeypatch.setenv("PARTNER_S3_SECRET", "rotated")
    assert profile.s3_endpoint().secret_access_key == "rotated"


def test_a_missing_env_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARTNER_S3_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        full_profile().s3_endpoint()
    assert "PARTNER_S3_SECRET" in str(caught.value)
    assert "'partner drop'" in str(caught.value)
    assert "not set" in str(caught.value)


def test_a_missing_keyring_entry_is_a_clear_error(memory_keyring: MemoryKeyring) -> None:
    ProfileStore().save(password_profile())
    memory_keyring.entries.clear()
    profile = ProfileStore().load().profiles["ops"]
    with pytest.raises(ConfigError, match=r"ops/sftp\.password is missing"):
        profile.sftp_endpoint()
    assert profile.sftp_endpoint(password="typed at a prompt").password == "typed at a prompt"


def test_a_keyring_reference_without_an_entry_is_not_saved(memory_keyring: MemoryKeyring) -> None:
    store = ProfileStore()
    store.save(password_profile("ops"))
    copied_by_hand = store.get("ops")  # references keyring entries stored under "ops"
    with pytest.raises(ConfigError, match="use rename or duplicate"):
        store.save(replace(copied_by_hand, name="ops-copy"))
    assert set(store.load().profiles) == {"ops"}
    store.save(copied_by_hand)  # unchanged references of the same profile are fine


def test_a_secret_pasted_into_the_file_is_refused_without_being_echoed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(
        f'[profiles.pasted.sftp]\nhost = "h"\nauth = "password"\npassword = "{PASSWORD}"\n'
    )
    profiles_found, problems = store.load()
    assert profiles_found == {}
    assert len(problems) == 1
    assert problems[0].line == 4
    assert problems[0].field == "sftp.password"
    assert "never the secret itself" in str(problems[0])
    assert PASSWORD not in str(problems[0])
    assert redact(f"login with {PASSWORD}") == "login with ***"


def test_rename_duplicate_and_delete_carry_keyring_entries(memory_keyring: MemoryKeyring) -> None:
    store = ProfileStore()
    store.save(password_profile("ops"))

    renamed = store.rename("ops", "ops-eu")
    assert renamed is not None and renamed.name == "ops-eu"
    store.duplicate("ops-eu", "ops-us")
    assert set(store.load().profiles) == {"ops-eu", "ops-us"}
    assert {user for _, user in memory_keyring.entries} == {
        "ops-eu/sftp.password",
        "ops-eu/s3.secret_access_key",
        "ops-us/sftp.password",
        "ops-us/s3.secret_access_key",
    }
    assert store.get("ops-us").sftp_endpoint().password == PASSWORD

    store.delete("ops-eu")
    assert set(store.load().profiles) == {"ops-us"}
    assert {user for _, user in memory_keyring.entries} == {
        "ops-us/sftp.password",
        "ops-us/s3.secret_access_key",
    }
    with pytest.raises(ConfigError, match="already exists"):
        store.duplicate("ops-us", "ops-us")
    with pytest.raises(ConfigError, match="No profile named"):
        store.rename("nope", "x")


def test_switching_away_from_a_stored_password_removes_its_keyring_entry(
    memory_keyring: MemoryKeyring,
) -> None:
    store = ProfileStore()
    store.save(password_profile("ops"))
    agent = Profile(name="ops", sftp=SftpSettings(host="10.0.0.5", user="ops"))
    store.save(agent)
    assert list(memory_keyring.entries) == []


# --- hand-edited and broken files --------------------------------------------------------------

COMMENTED = """\
# Our team's SFTP drops. Ask #data-eng before changing the partner one.
version = 1

# The partner's nightly export.
[profiles.partner.sftp]
host = "sftp.partner.example"  # the new host since March
# they rotate this key every quarter
user = "etl"

[profiles.partner.transfer]
part_size = 67108864  # 64 MiB, agreed with the partner

# Our own test box; keep it.
[profiles.lab.sftp]
host = "lab.internal"  # behind the VPN
"""


def test_the_users_comments_survive_save_rename_duplicate_and_delete() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(COMMENTED)
    partner = store.get("partner")

    store.save(replace(partner, sftp=replace(partner.sftp, port=2222)))
    text = store.path.read_text()
    assert text.startswith(COMMENTED.split("[profiles.partner.transfer]")[0].rstrip("\n"))
    assert "port = 2222" in text
    assert "part_size = 67108864  # 64 MiB, agreed with the partner" in text  # same meaning

    store.rename("partner", "partner-eu")
    assert store.path.read_text() == text.replace("[profiles.partner.", "[profiles.partner-eu.")
    store.duplicate("lab", "lab-2")
    store.save(Profile(name="new one", sftp=SftpSettings(host="new.example")))
    store.delete("lab-2")
    text = store.path.read_text()
    for comment in (
        "# Our team's SFTP drops. Ask #data-eng before changing the partner one.",
        "# The partner's nightly export.",
        'host = "sftp.partner.example"  # the new host since March',
        "# they rotate this key every quarter",
        "part_size = 67108864  # 64 MiB, agreed with the partner",
        "# Our own test box; keep it.",
        'host = "lab.internal"  # behind the VPN',
    ):
        assert text.count(comment) == 1, comment
    assert "[profiles.partner-eu.sftp]" in text and "[profiles.partner." not in text
    assert set(store.load().profiles) == {"partner-eu", "lab", "new one"}
    assert store.get("partner-eu").sftp.port == 2222
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


FLAKY_PARTNER = """\
version = 1

[profiles.flaky.sftp]
host = "sftp.flaky.example"

# Their disk truncated two files in May: read every delivery back.
[profiles.flaky.delivery]
verify_readback = true  # agreed with their ops, ticket 4711
"""


def test_a_profiles_delivery_checks_are_kept_and_its_comments_survive() -> None:
    """``[delivery]`` (how an S3 → SFTP delivery to the partner is checked) loads, saves
    and loads back; the user's comments beside it stay; a check turned off leaves the file."""
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(FLAKY_PARTNER)
    flaky = store.get("flaky")
    assert flaky.delivery == DeliverySettings(verify_readback=True)

    both = replace(flaky, delivery=replace(flaky.delivery, verify_server_hash=True))
    store.save(both)
    text = store.path.read_text()
    assert "# Their disk truncated two files in May: read every delivery back." in text
    assert "verify_readback = true  # agreed with their ops, ticket 4711" in text
    assert "verify_server_hash = true" in text
    assert ProfileStore().get("flaky") == both

    store.save(replace(both, delivery=DeliverySettings(verify_server_hash=True)))
    text = store.path.read_text()
    assert "verify_readback" not in text
    assert ProfileStore().get("flaky").delivery == DeliverySettings(verify_server_hash=True)
    assert text.startswith(FLAKY_PARTNER.split("[profiles.flaky.delivery]")[0])


def test_a_wrong_delivery_check_names_its_field() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(
        FLAKY_PARTNER.replace("verify_readback = true", 'verify_readback = "yes"')
    )

    loaded, [problem] = store.load()

    assert loaded == {}
    assert (problem.profile, problem.field) == ("flaky", "delivery.verify_readback")
    assert "must be true or false" in str(problem)


GOOD_AND_BAD = """\
version = 1

[profiles.first.sftp]
host = "one.example"

[profiles.broken.sftp]
host = "two.example"
port = = 22

[profiles.last.sftp]
host = "three.example"
user = "etl"
"""


def test_bad_toml_names_the_line_keeps_other_profiles_and_is_never_overwritten() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(GOOD_AND_BAD)

    loaded, problems = store.load()

    assert set(loaded) == {"first", "last"}
    assert [(p.profile, p.line) for p in problems] == [(None, 8), ("broken", 6)]
    assert "skipped until the file is valid TOML" in str(problems[1])
    assert "line 8" in str(problems[0]) and "not valid TOML" in str(problems[0])
    for change in (
        lambda: store.save(full_profile()),
        lambda: store.delete("first"),
        lambda: store.rename("first", "renamed"),
    ):
        with pytest.raises(ConfigError, match="Not changing the profile file"):
            change()
    assert store.path.read_text() == GOOD_AND_BAD


def test_a_wrong_typed_field_is_located_and_the_profile_kept_as_written() -> None:
    text = GOOD_AND_BAD.replace("port = = 22", 'port = "twenty-two"')
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(text)

    loaded, problems = store.load()

    assert set(loaded) == {"first", "last"}
    assert ProfileStore().get("last").sftp.user == "etl"  # get() loads when needed
    [problem] = problems
    assert (problem.profile, problem.field, problem.line) == ("broken", "sftp.port", 8)
    assert "line 8, profile 'broken', sftp.port: must be an integer from 1 to 65535" in str(problem)
    with pytest.raises(ConfigError, match="cannot be used"):
        store.get("broken")

    store.save(full_profile())  # the rest of the store keeps working
    assert 'port = "twenty-two"' in store.path.read_text()
    assert set(store.load().profiles) == {"first", "last", "partner drop"}


@pytest.mark.parametrize(
    ("table", "field", "line"),
    [
        ('[profiles.x.sftp]\nhost = "h"\nprot = 22\n', "sftp.prot", 3),
        ('[profiles.x.sftp]\nhost = "h"\nauth = "kerberos"\n', "sftp.auth", 3),
        ('[profiles.x.sftp]\nuser = "u"\n', "sftp.host", 1),
        (
            '[profiles.x.sftp]\nhost = "h"\n[profiles.x.s3]\npath_style = "yes"\n',
            "s3.path_style",
            4,
        ),
        (
            '[profiles.x.sftp]\nhost = "h"\n[profiles.x.transfer]\npart_size = "1MiB"\n',
            "transfer.part_size",
            4,
        ),
        ('[profiles.x]\nsftp = { host = "h", port = 0 }\n', "sftp.port", 2),
    ],
)
def test_field_problems_name_profile_field_and_line(
    table: str, field: str | None, line: int
) -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(table)
    loaded, [problem] = store.load()
    assert loaded == {}
    assert problem.profile == "x"
    assert problem.line == line
    if field:
        assert problem.field == field


def test_a_newer_format_version_is_refused_and_kept() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text('version = 2\n[profiles.a.sftp]\nhost = "h"\n')
    _, [problem] = store.load()
    assert "version 2 is not supported" in str(problem)
    with pytest.raises(ConfigError):
        store.save(full_profile())


# --- atomic writes -----------------------------------------------------------------------------


@pytest.mark.parametrize("crash", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_crash_mid_save_leaves_the_old_file_and_no_temp_files(
    monkeypatch: pytest.MonkeyPatch, crash: BaseException
) -> None:
    store = ProfileStore()
    store.save(full_profile())
    before = store.path.read_bytes()

    def write_half_then_crash(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise crash

    monkeypatch.setattr(atomic, "_write_all", write_half_then_crash)
    with pytest.raises((ConfigError, KeyboardInterrupt)) as caught:
        store.save(full_profile("second"))

    if isinstance(crash, OSError):
        assert "previous file is unchanged" in str(caught.value)
    assert store.path.read_bytes() == before
    assert os.listdir(store.path.parent) == ["profiles.toml"]


# --- using a profile ---------------------------------------------------------------------------


def test_a_profile_becomes_engine_endpoints_and_options(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_KEY_PASSPHRASE", "pp")
    monkeypatch.setenv("PARTNER_S3_SECRET", "ss")
    profile = full_profile()

    sftp = profile.sftp_endpoint()
    assert sftp.identity_files == (str(isolated_home / ".ssh" / "id_partner"),)
    assert sftp.known_hosts == str(isolated_home / ".ssh" / "known_hosts_partner")
    assert (sftp.host, sftp.port, sftp.username, sftp.use_agent) == (
        "sftp.partner.example",
        2222,
        "etl",
        False,
    )
    assert sftp.host_key_policy is HostKeyPolicy.ACCEPT_NEW

    s3 = profile.s3_endpoint()
    assert (s3.endpoint_url, s3.region, s3.path_style) == (
        "http://minio.internal:9000",
        "eu-west-1",
        True,
    )
    assert (s3.storage_class, s3.server_side_encryption) == ("STANDARD_IA", "aws:kms")

    options = profile.transfer_options(TransferOptions(files_in_flight=3))
    assert (options.part_size, options.memory_budget, options.parts_in_flight) == (
        64 * MiB,
        1024 * MiB,
        4,
    )
    assert (options.sftp_concurrency, options.s3_concurrency) == (6, 12)
    assert options.conflict is ConflictPolicy.IF_NEWER
    assert options.files_in_flight == 3

    assert str(profile.default_source()) == "sftp://etl@sftp.partner.example:2222/exports/daily"
    assert profile.default_destination() == S3Location("landing", "partner/2026-11/")


def test_a_password_profile_without_a_stored_password_asks_for_it() -> None:
    profile = Profile(name="p", sftp=SftpSettings(host="h", auth=SftpAuth.PASSWORD))
    assert profile.secrets_to_ask() == ["sftp.password"]
    assert profile.sftp_endpoint(password="typed").password == "typed"
    assert password_profile().secrets_to_ask() == []


def test_an_agent_profile_offers_no_key_or_password() -> None:
    profile = Profile(name="a", sftp=SftpSettings(host="h"))
    sftp = profile.sftp_endpoint()
    assert (sftp.use_agent, sftp.identity_files, sftp.password) == (True, (), None)
    assert profile.s3_endpoint().secret_access_key is None
    assert profile.default_destination() is None


def test_secret_references_parse_and_refuse_anything_else() -> None:
    assert Secret.parse("keyring:").kind is SecretKind.KEYRING
    assert Secret.parse("env:MY_VAR") == Secret.from_env("MY_VAR")
    assert Secret.from_env("MY_VAR").reference == "env:MY_VAR"
    for bad in ("hunter2", "env:", "env:1BAD", "keyring:other"):
        with pytest.raises(ConfigError):
            Secret.parse(bad)
    assert "s3cr3t" not in repr(Secret.literal("s3cr3t"))


# --- imports -----------------------------------------------------------------------------------

SSH_CONFIG = """\
# a typical config
Host partner
    HostName sftp.partner.example
    Port 2222
    User etl
    IdentityFile ~/.ssh/id_partner

Host internal backup
    HostName 10.0.0.5
    ProxyJump bastion.example

Host *.corp !secret.corp
    User corp

Host=bastion.example
    User jump
    UserKnownHostsFile ~/.ssh/known_hosts_bastion

Host *
    User fallback
    IdentityFile ~/.ssh/id_default
"""


def test_ssh_config_import(tmp_path: Path, isolated_home: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(SSH_CONFIG)

    hosts = {host.alias: host for host in import_ssh_config(config)}

    assert list(hosts) == ["partner", "internal", "backup", "bastion.example"]
    partner = hosts["partner"]
    assert (partner.hostname, partner.port, partner.user) == ("sftp.partner.example", 2222, "etl")
    assert partner.identity_files == ("~/.ssh/id_partner", "~/.ssh/id_default")
    assert partner.proxy_jump is None
    internal = hosts["internal"]
    assert (internal.hostname, internal.user, internal.proxy_jump) == (
        "10.0.0.5",
        "fallback",
        "bastion.example",
    )
    assert hosts["backup"].hostname == "10.0.0.5"
    assert hosts["bastion.example"].known_hosts == "~/.ssh/known_hosts_bastion"

    profile = partner.to_profile()
    assert profile.name == "partner"
    assert profile.sftp.auth is SftpAuth.KEY
    assert profile.validate() == []
    assert profile.sftp_endpoint().identity_files == (str(isolated_home / ".ssh" / "id_partner"),)


def test_ssh_config_import_follows_include(isolated_home: Path) -> None:
    ssh = isolated_home / ".ssh"
    (ssh / "config.d").mkdir(parents=True)
    (ssh / "config").write_text("Include config.d/*\n\nHost main\n    User me\n")
    (ssh / "config.d" / "partners").write_text("Host drop\n    HostName drop.example\n")

    hosts = import_ssh_config()

    assert [(h.alias, h.hostname) for h in hosts] == [("drop", "drop.example"), ("main", "main")]
    assert hosts[1].to_profile().sftp.auth is SftpAuth.AGENT


def test_ssh_config_import_without_a_file_is_empty(tmp_path: Path) -> None:
    assert import_ssh_config(tmp_path / "missing") == []
    assert import_ssh_config() == []  # ~/.ssh/config of the isolated home


def test_ssh_config_errors_are_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host a\n    Port not-a-number\n")
    with pytest.raises(ConfigError, match="line 2"):
        import_ssh_config(config)


AWS_CONFIG = """\
[default]
region = us-east-1

[profile prod]
region = eu-west-1
aws_secret_access_key = config-file-secret

[profile minio]
endpoint_url = http://127.0.0.1:9000
region = us-east-1

[profile r2]
services = r2-services

[services r2-services]
s3 =
  endpoint_url = https://account.r2.cloudflarestorage.com

[sso-session corp]
sso_region = us-east-1
"""

AWS_CREDENTIALS = """\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = credentials-file-secret

[ci]
aws_access_key_id = AKIACI
aws_secret_access_key = another-credentials-secret
"""


def test_aws_profiles_import_names_regions_and_endpoints_never_keys(tmp_path: Path) -> None:
    config = tmp_path / "config"
    credentials = tmp_path / "credentials"
    config.write_text(AWS_CONFIG)
    credentials.write_text(AWS_CREDENTIALS)

    found = import_aws_profiles(config, credentials)

    by_name = {p.name: p for p in found}
    assert list(by_name) == ["default", "prod", "minio", "r2", "ci"]
    assert by_name["prod"].region == "eu-west-1"
    assert by_name["minio"].endpoint_url == "http://127.0.0.1:9000"
    assert by_name["r2"].endpoint_url == "https://account.r2.cloudflarestorage.com"
    assert by_name["ci"].region is None
    assert "secret" not in repr(found)
    settings = by_name["prod"].to_s3_settings()
    assert (settings.aws_profile, settings.region, settings.secret_access_key) == (
        "prod",
        "eu-west-1",
        None,
    )


def test_aws_import_follows_the_aws_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "elsewhere"
    config.write_text("[profile other]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert [p.name for p in import_aws_profiles()] == ["other"]


def test_a_broken_aws_config_does_not_echo_its_lines(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("aws_secret_access_key = leaked-if-echoed\n")
    with pytest.raises(ConfigError) as caught:
        import_aws_profiles(config, tmp_path / "none")
    assert "line 1" in str(caught.value)
    assert "leaked-if-echoed" not in str(caught.value)


# --- redaction ---------------------------------------------------------------------------------


def test_redacting_filter_masks_messages_arguments_and_tracebacks() -> None:
    register_secret("tok-123456")
    logger = logging.getLogger("test.redaction")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("token %s in use", "tok-123456")
        try:
            raise ValueError("bad token tok-123456")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)

    text = "\n".join(logging.Formatter().format(r) for r in records)
    assert "tok-123456" not in text
    assert "token *** in use" in text
    assert "bad token ***" in text
    assert redact("a long-secret and secret", ["secret", "long-secret"]) == "a *** and ***"


def test_a_short_secret_is_masked_where_it_stands_alone_not_inside_words() -> None:
    text = "uploading data.csv as pw2 (pw2x is another word)"

    assert redact(text, ["a"]) == text  # masking every "a" would mangle the log and reveal it
    assert redact(text, ["pw2"]) == "uploading data.csv as *** (pw2x is another word)"
    assert redact("token=abcdefgh12345678;", ["abcdefgh12345678"]) == "token=***;"
    assert redact("xabcdefgh12345678x", ["abcdefgh12345678"]) == "x***x"  # long: anywhere
