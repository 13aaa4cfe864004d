"""What every observability test checks: the secrets a run knows never show, and JSON log lines."""

from __future__ import annotations

import json
from typing import Any

SFTP_PASSWORD = "Sftp-Pw-never-shown-4711"
AWS_SECRET = "AwsSecret/never+shown/0123456789abcdef"
LOG_KEYS = {"time", "level", "event", "run_id", "file", "key", "part", "attempt", "error", "hint"}


def secrets_env() -> dict[str, str]:
    """A password and an AWS secret key the run knows (moto accepts any secret key; the
    SFTP login is by key, the password is only offered)."""
    return {"SFTP_PASSWORD": SFTP_PASSWORD, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SFTP_PASSWORD not in text
        assert AWS_SECRET not in text


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    return parsed
