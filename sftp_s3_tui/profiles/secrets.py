"""Secrets of profiles: references (``keyring:``, ``env:VARNAME``), the system keyring, and
resolving a reference to its value when a profile is used."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum

from ..engine.errors import ConfigError
from ..redaction import redact, register_secret

log = logging.getLogger(__name__)

KEYRING_SERVICE = "sftp-s3-tui"

# Secret fields, as "<section>.<key>", with the words used for them in messages.
SECRET_FIELDS: dict[str, str] = {
    "sftp.password": "the SFTP password",
    "sftp.passphrase": "the SSH key passphrase",
    "s3.secret_access_key": "the S3 secret access key",
}


class SecretKind(StrEnum):
    """Where a secret's value comes from."""

    KEYRING = "keyring"
    ENV = "env"
    LITERAL = "literal"


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Secret:
    """A secret field of a profile: a reference (keyring, env) or, until saved, a literal.

    Only references are written to disk. Build one with :meth:`in_keyring`,
    :meth:`from_env`, :meth:`literal` or :meth:`parse`.
    """

    kind: SecretKind
    env_var: str | None = None
    value: str | None = field(default=None, repr=False)

    @classmethod
    def in_keyring(cls) -> Secret:
        """The value is in the system keyring under the profile's name and the field."""
        return cls(SecretKind.KEYRING)

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """The value is read from environment variable ``name`` when the profile is used."""
        if not _ENV_NAME.match(name):
            raise ConfigError(
                f"Not an environment variable name: {name!r}",
                "use letters, digits and underscores, not starting with a digit",
            )
        return cls(SecretKind.ENV, env_var=name)

    @classmethod
    def literal(cls, value: str) -> Secret:
        """A value typed by the user; saving the profile moves it into the keyring."""
        register_secret(value)
        return cls(SecretKind.LITERAL, value=value)

    @classmethod
    def parse(cls, reference: str) -> Secret:
        """Parse a stored reference, ``keyring:`` or ``env:VARNAME``.

        Anything else is refused without echoing it: it may be a secret pasted by hand.
        """
        if reference == "keyring:":
            return cls.in_keyring()
        if reference.startswith("env:") and _ENV_NAME.match(reference[4:]):
            return cls.from_env(reference[4:])
        raise ConfigError(
            "must be a reference, 'keyring:' or 'env:VARNAME', never the secret itself",
            "remove the value from the file and set the secret in the app, or use env:VARNAME",
        )

    @property
    def reference(self) -> str:
        """The text stored in the profile file."""
        if self.kind is SecretKind.KEYRING:
            return "keyring:"
        if self.kind is SecretKind.ENV:
            return f"env:{self.env_var}"
        raise ConfigError("A literal secret has no stored form", "save it to the keyring first")

    def __str__(self) -> str:
        return "(unsaved secret)" if self.kind is SecretKind.LITERAL else self.reference


def keyring_available() -> bool:
    """Whether a system keyring backend is usable here (False on most headless Linux)."""
    import keyring  # imported when needed: it takes a while, and --help needs none of it
    import keyring.backends.fail
    import keyring.backends.null

    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    return not isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring)


def _keyring_user(profile: str, field_id: str) -> str:
    return f"{profile}/{field_id}"


def _no_keyring(profile: str, field_id: str, detail: str = "") -> ConfigError:
    what = SECRET_FIELDS[field_id]
    because = f" ({detail})" if detail else ""
    return ConfigError(
        f"No working system keyring to store {what} of profile {profile!r}{because}; "
        "sftp-s3-tui never writes secrets to the profile file",
        f"put the secret in an environment variable and set the field to env:VARNAME"
        f"{', or use ssh-agent' if field_id.startswith('sftp.') else ', or use an AWS profile'}",
    )


def _keyring_set(profile: str, field_id: str, value: str) -> None:
    """Store a secret and read it back, so a backend that silently drops it is caught."""
    if not keyring_available():
        raise _no_keyring(profile, field_id)
    import keyring

    user = _keyring_user(profile, field_id)
    try:
        keyring.set_password(KEYRING_SERVICE, user, value)
        stored = keyring.get_password(KEYRING_SERVICE, user)
    except Exception as exc:
        detail = redact(f"{type(exc).__name__}: {exc}", [value])
        raise _no_keyring(profile, field_id, detail) from None
    if stored != value:
        raise _no_keyring(profile, field_id, "the keyring did not keep the value")


def _keyring_get(profile: str, field_id: str) -> str | None:
    import keyring

    try:
        return keyring.get_password(KEYRING_SERVICE, _keyring_user(profile, field_id))
    except Exception as exc:
        raise ConfigError(
            f"Cannot read {SECRET_FIELDS[field_id]} of profile {profile!r} from the system "
            f"keyring ({type(exc).__name__})",
            "unlock the keyring, or set the field to env:VARNAME",
        ) from None


def _keyring_delete(profile: str, field_id: str) -> None:
    """Remove a keyring entry if it exists; failures are logged, not raised."""
    if not keyring_available():
        return  # no keyring here, so no entry to remove
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(KEYRING_SERVICE, _keyring_user(profile, field_id))
    except keyring.errors.PasswordDeleteError:
        pass
    except Exception as exc:
        log.warning(
            "Could not delete keyring entry %s/%s (%s)",
            KEYRING_SERVICE,
            _keyring_user(profile, field_id),
            type(exc).__name__,
        )


def _resolve(secret: Secret | None, profile: str, field_id: str) -> str | None:
    """The value of a secret field now: from the keyring, the environment or the literal."""
    if secret is None:
        return None
    what = SECRET_FIELDS[field_id]
    if secret.kind is SecretKind.LITERAL:
        value = secret.value
    elif secret.kind is SecretKind.ENV:
        value = os.environ.get(secret.env_var or "")
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise ConfigError(
                f"Profile {profile!r} takes {what} from the environment variable "
                f"{secret.env_var}, which {state}",
                f"set {secret.env_var} before starting sftp-s3-tui, or edit {{setting}}",
                setting=f"{field_id.split('.')[-1]}_env",
            )
    else:
        if not keyring_available():
            raise ConfigError(
                f"Profile {profile!r} keeps {what} in the system keyring, but no keyring is "
                "available here",
                "set the field to env:VARNAME for this machine, or run where the keyring is",
            )
        value = _keyring_get(profile, field_id)
        if value is None:
            raise ConfigError(
                f"Profile {profile!r} keeps {what} in the system keyring, but the entry "
                f"{KEYRING_SERVICE} / {_keyring_user(profile, field_id)} is missing",
                "edit the profile and enter the secret again, or set it to env:VARNAME",
            )
    register_secret(value)
    return value
