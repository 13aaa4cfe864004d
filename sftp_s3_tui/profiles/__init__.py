"""Saved connection profiles: an SFTP source, an S3 destination and transfer defaults.

Profiles live in one TOML file in the user config dir (``paths.profiles_file()``), mode 0600.
Secrets are never written to it: a secret field holds a reference, ``keyring:`` (the value is
in the system keyring, service ``sftp-s3-tui``, user ``<profile>/<field>``) or ``env:VARNAME``
(read from the environment when the profile is used), or is absent (ssh-agent, AWS profile or
credential chain). A literal secret typed into a profile moves into the keyring when the
profile is saved; without a working keyring the save fails and says what to do instead.

The file may be edited by hand. A file that is not valid TOML is reported with its line and
never overwritten; a profile with a bad field is reported with its line and field, the other
profiles stay usable, and the bad profile's table is written back untouched on the next save.

The package: ``secrets`` (references and the keyring), ``model`` (the profile and its
checks), ``mapping`` (TOML tables), ``store`` (the file), ``imports`` (~/.ssh, ~/.aws).
"""

from __future__ import annotations

from .imports import AwsProfile, SshHost, import_aws_profiles, import_ssh_config
from .model import (
    DeliverySettings,
    NotifySettings,
    Profile,
    S3Settings,
    SftpAuth,
    SftpSettings,
    TransferDefaults,
)
from .secrets import KEYRING_SERVICE, SECRET_FIELDS, Secret, SecretKind, keyring_available
from .store import LoadResult, ProfileError, ProfileStore

__all__ = [
    "KEYRING_SERVICE",
    "SECRET_FIELDS",
    "AwsProfile",
    "DeliverySettings",
    "LoadResult",
    "NotifySettings",
    "Profile",
    "ProfileError",
    "ProfileStore",
    "S3Settings",
    "Secret",
    "SecretKind",
    "SftpAuth",
    "SftpSettings",
    "SshHost",
    "TransferDefaults",
    "import_aws_profiles",
    "import_ssh_config",
    "keyring_available",
]
