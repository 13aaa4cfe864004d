"""Every file-system location the app uses, in one place (via platformdirs).

Paths are computed on each call, so XDG variables (``XDG_CONFIG_HOME``, ``XDG_STATE_HOME``)
set after import — by a test, say — are honoured. Nothing here creates a directory; use
:func:`ensure_private_dir` for that.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "sftp-s3-tui"


def config_dir() -> Path:
    """The user's config directory for the app (profiles live here)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    """The user's state directory (resume journal, logs)."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def profiles_file() -> Path:
    """The TOML file holding saved connection profiles."""
    return config_dir() / "profiles.toml"


def delivery_record_dir() -> Path:
    """Where S3 → SFTP deliveries in progress are recorded (the CLI's and the TUI's: a
    killed or paused delivery is found again by either)."""
    return state_dir() / "deliveries"


def journal_dir() -> Path:
    """Where the crash-safe resume journal is kept."""
    return state_dir() / "journal"


def log_dir() -> Path:
    """Where log files are written."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the owner only (0700).

    Directories that already exist keep their mode: the app never changes permissions of a
    directory it did not create.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    return path
