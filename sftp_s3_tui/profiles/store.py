"""The profile file: load (reporting each bad profile with its line), save, rename, duplicate
and delete, with secrets moved to the keyring and the file written atomically, 0600.

The file is also the user's: it is edited in place with tomlkit, which keeps comments and
layout, so a save changes only the keys that changed (tomllib still does the checking, for
its error positions)."""

from __future__ import annotations

import copy
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import paths
from ..engine.durable import atomic_write
from ..engine.errors import ConfigError
from ..redaction import register_secret
from .mapping import (
    _keyring_fields,
    _locate,
    _profile_from_table,
    _profile_to_table,
    _salvage,
)
from .model import Profile, _check_name

if TYPE_CHECKING:  # tomlkit (~0.1 s to import) only when the file is written
    from tomlkit.items import Table
    from tomlkit.toml_document import TOMLDocument

from .secrets import (
    KEYRING_SERVICE,
    SECRET_FIELDS,
    Secret,
    SecretKind,
    _keyring_delete,
    _keyring_get,
    _keyring_set,
    _keyring_user,
    _no_keyring,
    keyring_available,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

_FILE_HEADER = """\
# sftp-s3-tui connection profiles. Written by sftp-s3-tui (your comments are kept).
# Secrets are never stored here: a secret field holds "keyring:" (system keyring, service
# "sftp-s3-tui", user "<profile>/<field>") or "env:VARNAME" (read from the environment).

"""


def _check_keyring_entries(profile: Profile, known: set[str]) -> None:
    """Refuse ``keyring:`` references that point at nothing (e.g. a profile saved under a
    new name instead of renamed); fields in ``known`` were already stored that way."""
    for field_id, secret in profile.secrets().items():
        if secret is None or secret.kind is not SecretKind.KEYRING or field_id in known:
            continue
        if not keyring_available() or _keyring_get(profile.name, field_id) is None:
            raise ConfigError(
                f"Profile {profile.name!r} not saved: {SECRET_FIELDS[field_id]} is set to "
                f"'keyring:' but the keyring has no entry "
                f"{KEYRING_SERVICE} / {_keyring_user(profile.name, field_id)}",
                "enter the secret so it can be stored, or use env:VARNAME "
                "(use rename or duplicate to give a profile a new name)",
            )


class ProfileError(ConfigError):
    """A problem in the profile file, located by line, profile and field where known."""

    title = "Profile problem"

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        path: Path | None = None,
        line: int | None = None,
        column: int | None = None,
        profile: str | None = None,
        field: str | None = None,
    ) -> None:
        where = [str(path)] if path else []
        if line:
            where.append(f"line {line}" + (f", column {column}" if column else ""))
        if profile is not None:
            where.append(f"profile {profile!r}")
        if field:
            where.append(field)
        super().__init__(f"{', '.join(where)}: {message}" if where else message, hint)
        self.path = path
        self.line = line
        self.column = column
        self.profile = profile
        self.field = field


class LoadResult(NamedTuple):
    """What :meth:`ProfileStore.load` found: usable profiles, and problems to show."""

    profiles: dict[str, Profile]
    problems: list[ProfileError]


@dataclass
class _FileState:
    """The profile file as read: raw tables (kept for writing back) and their meaning."""

    tables: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # the file as read, for tomlkit to edit (None: no file yet)
    extra: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    problems: list[ProfileError] = field(default_factory=list)
    fatal: ProfileError | None = None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_FIX_HINT = "fix the file in an editor, then reload"


class ProfileStore:
    """Load and change the profile file; every change re-reads it and writes atomically.

    Changes are refused while the file cannot be parsed, so a hand edit is never lost.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else paths.profiles_file()
        self.profiles: dict[str, Profile] = {}
        self.problems: list[ProfileError] = []
        self._loaded = False

    def load(self) -> LoadResult:
        """Read the file: usable profiles and a list of problems (never raises for content)."""
        state = self._read()
        self.profiles = state.profiles
        self.problems = ([state.fatal] if state.fatal else []) + state.problems
        self._loaded = True
        log.debug(
            "Loaded %d profiles (%d problems) from %s",
            len(self.profiles),
            len(self.problems),
            self.path,
        )
        return LoadResult(dict(self.profiles), list(self.problems))

    def get(self, name: str) -> Profile:
        """A usable profile by name (as of the last :meth:`load`, which runs if none has)."""
        if not self._loaded:
            self.load()
        if name in self.profiles:
            return self.profiles[name]
        found = [p for p in self.problems if p.profile == name]
        if found:
            raise ConfigError(f"Profile {name!r} cannot be used: {found[0].message}", _FIX_HINT)
        raise ConfigError(f"No profile named {name!r}", f"saved profiles are in {self.path}")

    def save(self, profile: Profile, *, overwrite: bool = True) -> Profile:
        """Create or replace a profile; literal secrets move into the keyring first.

        Returns the profile as stored (literal secrets replaced by ``keyring:``). Raises
        :class:`ConfigError` when the profile is invalid, the file cannot be parsed, the name
        is taken (``overwrite=False``), or a literal secret cannot go to a keyring.
        """
        profile = profile.normalized()
        problems = profile.validate()
        if problems:
            detail = "; ".join(f"{f}: {m}" for f, m in problems)
            raise ConfigError(f"Profile {profile.name!r} not saved: {detail}", "correct it")
        state = self._writable_state()
        if not overwrite and profile.name in state.tables:
            raise ConfigError(
                f"A profile named {profile.name!r} already exists", "choose another name"
            )
        literals = {
            field_id: secret.value or ""
            for field_id, secret in profile.secrets().items()
            if secret is not None and secret.kind is SecretKind.LITERAL
        }
        stored = profile
        for field_id in literals:
            stored = stored.with_secret(field_id, Secret.in_keyring())
        table = _profile_to_table(stored)
        reloaded, problems = _profile_from_table(stored.name, table)
        if reloaded != stored:  # whatever is saved must load back the same
            detail = "; ".join(f"{f}: {m}" for f, m in problems) or "it would not load back"
            raise ConfigError(f"Profile {profile.name!r} not saved: {detail}", "correct it")
        old_keyring = _keyring_fields(state.tables.get(profile.name))
        _check_keyring_entries(stored, set(old_keyring) | set(literals))
        if literals and not keyring_available():
            raise _no_keyring(profile.name, next(iter(literals)))
        try:
            for field_id, value in literals.items():
                _keyring_set(profile.name, field_id, value)
            self._write(state, _Change(profile.name, table, state.profiles.get(profile.name)))
        except BaseException:
            # New entries would be orphans; a replaced entry stays (the old value is gone).
            for field_id in set(literals) - set(old_keyring):
                _keyring_delete(profile.name, field_id)
            raise
        for field_id in set(old_keyring) - set(_keyring_fields(table)):
            _keyring_delete(profile.name, field_id)
        log.info("Saved profile %r to %s", profile.name, self.path)
        return stored

    def delete(self, name: str) -> None:
        """Remove a profile and its keyring entries."""
        state = self._writable_state()
        if name not in state.tables:
            raise ConfigError(f"No profile named {name!r}", f"saved profiles are in {self.path}")
        table = state.tables[name]
        self._write(state, _Change(name, None))
        for field_id in _keyring_fields(table):
            _keyring_delete(name, field_id)
        log.info("Deleted profile %r from %s", name, self.path)

    def rename(self, name: str, new_name: str) -> Profile | None:
        """Rename a profile, moving its keyring entries; returns it if it is usable."""
        self._copy(name, new_name, move=True)
        return self.profiles.get(new_name)

    def duplicate(self, name: str, new_name: str) -> Profile | None:
        """Copy a profile under a new name, copying its keyring entries."""
        self._copy(name, new_name, move=False)
        return self.profiles.get(new_name)

    # -- internals ----------------------------------------------------------------------------

    def _copy(self, name: str, new_name: str, *, move: bool) -> None:
        name_problem = _check_name(new_name)
        if name_problem:
            raise ConfigError(f"Cannot use {new_name!r} as a profile name", name_problem)
        state = self._writable_state()
        if name not in state.tables:
            raise ConfigError(f"No profile named {name!r}", f"saved profiles are in {self.path}")
        if new_name in state.tables:
            raise ConfigError(f"A profile named {new_name!r} already exists", "choose another")
        table = state.tables[name]
        in_keyring = _keyring_fields(table)
        copied: list[str] = []
        try:
            for field_id in in_keyring:
                value = _keyring_get(name, field_id) if keyring_available() else None
                if value is None:
                    continue  # nothing to carry over; resolving will say the entry is missing
                register_secret(value)
                _keyring_set(new_name, field_id, value)
                copied.append(field_id)
            self._write(state, _Change(name, table, rename_to=new_name, keep_old=not move))
        except BaseException:
            for field_id in copied:
                _keyring_delete(new_name, field_id)
            raise
        if move:
            for field_id in in_keyring:
                _keyring_delete(name, field_id)
        verb = "Renamed" if move else "Duplicated"
        log.info("%s profile %r as %r in %s", verb, name, new_name, self.path)

    def _writable_state(self) -> _FileState:
        state = self._read()
        if state.fatal:
            raise ConfigError(
                f"Not changing the profile file: {state.fatal.message}",
                "the file is kept as it is so no hand edit is lost; fix it in an editor "
                "(or move it aside to start afresh), then try again",
            )
        return state

    def _read(self) -> _FileState:
        state = _FileState()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return state
        except UnicodeDecodeError:
            state.fatal = ProfileError("is not UTF-8 text", _FIX_HINT, path=self.path)
            return state
        except OSError as exc:
            state.fatal = ProfileError(
                f"cannot be read ({exc.strerror})", "check its permissions", path=self.path
            )
            return state
        try:
            document = tomllib.loads(text)
            state.text = text
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            line: int | None = getattr(exc, "lineno", None)  # Python 3.14+
            column: int | None = getattr(exc, "colno", None)
            position = _TOML_POSITION.search(message)
            if position:
                line, column = int(position.group(1)), int(position.group(2))
                message = message[: position.start()]
            state.fatal = ProfileError(
                f"not valid TOML: {message}", _FIX_HINT, path=self.path, line=line, column=column
            )
            salvaged, skipped = _salvage(text)
            self._check_profiles(state, text, salvaged)
            for name in skipped:
                state.problems.append(
                    ProfileError(
                        "skipped until the file is valid TOML again",
                        _FIX_HINT,
                        path=self.path,
                        line=_locate(text, ["profiles", name]),
                        profile=name,
                    )
                )
            return state
        version = document.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            state.fatal = ProfileError(
                f"format version {version!r} is not supported (this build reads {FORMAT_VERSION})",
                "use the sftp-s3-tui version that wrote it",
                path=self.path,
                line=_locate(text, ["version"]),
            )
            return state
        profiles = document.get("profiles", {})
        if not isinstance(profiles, dict):
            state.fatal = ProfileError(
                "'profiles' must be a table",
                _FIX_HINT,
                path=self.path,
                line=_locate(text, ["profiles"]),
            )
            return state
        state.extra = {k: v for k, v in document.items() if k not in ("version", "profiles")}
        for key in state.extra:
            state.problems.append(
                ProfileError(
                    f"unknown top-level key {key!r} (kept as it is)",
                    _FIX_HINT,
                    path=self.path,
                    line=_locate(text, [key]),
                )
            )
        self._check_profiles(state, text, profiles)
        return state

    def _check_profiles(self, state: _FileState, text: str, profiles: dict[str, Any]) -> None:
        state.tables = dict(profiles)
        for name, table in profiles.items():
            profile, problems = _profile_from_table(name, table)
            if profile is not None:
                state.profiles[name] = profile
            for field_id, message in problems:
                target = ["profiles", name, *(field_id.split(".") if field_id else [])]
                state.problems.append(
                    ProfileError(
                        message,
                        _FIX_HINT,
                        path=self.path,
                        line=_locate(text, target),
                        profile=name,
                        field=field_id or None,
                    )
                )

    def _write(self, state: _FileState, change: _Change) -> None:
        import tomlkit

        document = tomlkit.parse(state.text) if state.text is not None else _new_document()
        _apply(document, change)
        data = tomlkit.dumps(document).encode("utf-8")
        target = Path(os.path.realpath(self.path))  # keep a symlinked file a symlink
        try:
            _atomic_write(target, data)
        except OSError as exc:
            raise ConfigError(
                f"Could not save profiles to {self.path} ({exc.strerror or exc})",
                "the previous file is unchanged; check the disk and the directory's rights",
            ) from exc
        self.load()


class _Change(NamedTuple):
    """One change to the file: profile ``name`` gets ``table`` (``None`` deletes it); with
    ``rename_to`` the table moves (or, with ``keep_old``, is copied) to that name."""

    name: str
    table: dict[str, Any] | None
    before: Profile | None = None  # the profile as it loaded, to tell changed keys apart
    rename_to: str | None = None
    keep_old: bool = False


def _new_document() -> TOMLDocument:
    """A new file: the header comments, the format version, then the profiles."""
    import tomlkit

    document = tomlkit.document()
    for line in _FILE_HEADER.strip().splitlines():
        document.add(tomlkit.comment(line.removeprefix("# ")))
    document.add(tomlkit.nl())
    document["version"] = FORMAT_VERSION
    return document


def _apply(document: TOMLDocument, change: _Change) -> None:
    """Change the tomlkit document in place, so comments and layout elsewhere stay."""
    import tomlkit

    if "profiles" not in document:
        document["profiles"] = tomlkit.table(is_super_table=True)
    profiles = document["profiles"]
    if change.rename_to is not None:
        _rename(profiles, change)
    elif change.table is None:
        del profiles[change.name]
    elif change.name in profiles:
        _update_profile(profiles[change.name], change.table, change.before)
    else:
        profiles[change.name] = _new_profile_table(change.table)


def _new_profile_table(table: dict[str, Any]) -> Table:
    """A profile's table written as ``[profiles.NAME.section]`` headers only."""
    import tomlkit

    item = tomlkit.table(is_super_table=True)
    for section, values in table.items():
        item[section] = values
    return item


def _update_profile(item: Any, table: dict[str, Any], before: Profile | None) -> None:
    """Set the keys whose meaning changed and drop the ones now unset; a key that means the
    same (``67108864`` and ``"64MiB"``) keeps the user's spelling."""
    old = _profile_to_table(before) if before is not None else {}
    for section in list(item):
        if section not in table:
            del item[section]
    for section, values in table.items():
        if section not in item or not isinstance(item[section], dict):
            item[section] = values
            continue
        current = item[section]
        for key in list(current):
            if key not in values:
                del current[key]
        for key, value in values.items():
            if key not in current or old.get(section, {}).get(key) != value:
                current[key] = value


def _forget_headers(item: Any) -> None:
    """Let tomlkit spell the headers of a moved table from its new place."""
    from tomlkit.items import Table

    if isinstance(item, Table):
        item.display_name = None
        for child in item.values():
            _forget_headers(child)


def _rename(profiles: Any, change: _Change) -> None:
    """Move or copy one profile's table under a new name, keeping the profiles' order (a
    rename stays in place, a copy goes last) and every comment inside the table."""
    assert change.rename_to is not None
    source = profiles[change.name]
    moved = copy.deepcopy(source) if change.keep_old else source
    _forget_headers(moved)
    if change.keep_old:
        profiles.append(change.rename_to, moved)
        return
    # tomlkit has no public "rename a key in place": take the tables out and put them back
    # in order, each with the blank lines it had before (append would add one of its own).
    ordered = [(key, profiles[key]) for key in list(profiles)]
    indents = [getattr(getattr(value, "trivia", None), "indent", None) for _, value in ordered]
    for key, _ in ordered:
        profiles.remove(key)
    for (key, value), indent in zip(ordered, indents, strict=True):
        profiles.append(change.rename_to if key == change.name else key, value)
        if indent is not None:
            value.trivia.indent = indent


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing, 0600, in a private folder."""
    paths.ensure_private_dir(path.parent)
    atomic_write(path, data)
