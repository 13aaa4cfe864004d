"""What a newcomer meets before any transfer: a quick --help, a quick usage error, a
``cleanup --help`` about cleanup, and no wall of warnings from the libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli

#: Modules a --help or a usage error must not load: each costs tens of ms to seconds of CPU.
HEAVY = (
    "asyncio",
    "asyncssh",
    "botocore",
    "aioboto3",
    "textual",
    "rich",
    "cryptography",
    "keyring",
    "prometheus_client",
    "sftp_s3_tui.requests",
    "sftp_s3_tui.profiles",
)


def _loaded_after(*argv: str) -> tuple[list[str], str]:
    script = (
        "import sys\n"
        "from sftp_s3_tui.cli.main import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip().splitlines(), done.stderr


def test_help_and_a_usage_error_load_only_the_parser() -> None:
    lines, _ = _loaded_after("--help")
    assert lines[-1] == "[]", lines[-1]
    lines, stderr = _loaded_after("copy", "--part-size", "lots", "sftp://h/x", "s3://b/")
    assert "error: argument --part-size" in stderr
    assert lines[-1] == "[]", lines[-1]


def test_cleanup_help_lists_only_what_cleanup_takes() -> None:
    done = run_cli("cleanup", "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "--endpoint-url" in text and "--older-than" in text and "--abort" in text
    for other in ("--identity", "--known-hosts", "--push-gateway", "--metrics-port", "SFTP:"):
        assert other not in text, other
    assert "3 nothing matched" not in text and "1 some files failed" not in text
    assert "exit codes: 0 listed" in " ".join(text.split())

    refused = run_cli("cleanup", "--push-gateway", "localhost:9091", "s3://b")
    assert refused.returncode == 2
    assert "unrecognized arguments: --push-gateway" in refused.stderr


def test_asyncssh_dsa_deprecation_warnings_are_not_shown() -> None:
    """cryptography 51 deprecates DSA and asyncssh's import names its classes: ten warning
    lines at every start. The warning as cryptography raises it from asyncssh's module, and
    then the real import, whatever cryptography this venv has."""
    as_raised = (
        "import warnings, sftp_s3_tui\n"
        "warnings.warn_explicit('DSA is deprecated and support will be removed in a future "
        "release.', UserWarning, 'asyncssh/crypto/misc.py', 32, module='asyncssh.crypto.misc')\n"
        "warnings.warn_explicit('something else', UserWarning, 'asyncssh/x.py', 1, "
        "module='asyncssh.x')\n"
    )
    for script in (as_raised, "import sftp_s3_tui, asyncssh"):
        done = subprocess.run(
            [sys.executable, "-W", "default", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "DSA" not in done.stderr, done.stderr
        if script is as_raised:
            assert "something else" in done.stderr  # only that warning is hidden


def test_uv_run_starts_quietly() -> None:
    """Every `uv run` once printed "Bytecode compiled 7331 files" (the whole venv, each time)."""
    root = Path(__file__).resolve().parents[2]
    first = subprocess.run(
        ["uv", "run", "--offline", "python", "-c", "pass"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"},
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        ["uv", "run", "--offline", "python", "-c", "pass"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"},
    )
    assert "Bytecode compiled" not in first.stderr + again.stderr
    assert again.stderr == ""
