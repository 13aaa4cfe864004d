"""Airflow connections → engine endpoints, as plain functions on dicts (no Airflow import).

The operator turns a ``Connection`` into a :class:`ConnectionFields` dict with
:func:`connection_fields`; everything else here works on dicts, so it is tested without Airflow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypedDict

from ..engine.config import ConflictPolicy, HostKeyPolicy, S3Endpoint, SftpEndpoint
from ..engine.errors import ConfigError, UsageError
from ..engine.units import parse_rate, parse_size

log = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class ConnectionFields(TypedDict, total=False):
    """The parts of an Airflow connection the mapping reads."""

    conn_id: str
    conn_type: str
    host: str | None
    port: int | None
    login: str | None
    password: str | None
    extra: dict[str, Any]


def connection_fields(conn: Any) -> ConnectionFields:
    """The fields of an Airflow ``Connection`` (duck-typed, so Airflow 2 and 3 both work)."""
    extra = getattr(conn, "extra_dejson", None)
    if extra is None:
        raw = getattr(conn, "extra", None)
        extra = json.loads(raw) if raw else {}
    return ConnectionFields(
        conn_id=getattr(conn, "conn_id", "") or "",
        conn_type=getattr(conn, "conn_type", "") or "",
        host=getattr(conn, "host", None),
        port=getattr(conn, "port", None),
        login=getattr(conn, "login", None),
        password=getattr(conn, "password", None),
        extra=dict(extra),
    )


def _flag(extra: Mapping[str, Any], name: str, default: bool, conn_id: str) -> bool:
    """A boolean extra; Airflow users write them as JSON booleans or as strings."""
    value = extra.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(
        f"Connection {conn_id!r}: extra {name!r} is {value!r}, not true or false",
        "write it as true or false",
    )


def _number(extra: Mapping[str, Any], name: str, conn_id: str) -> float | None:
    value = extra.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Connection {conn_id!r}: extra {name!r} is {value!r}, not a number of seconds", ""
        ) from exc


def host_key_line(text: str) -> str:
    """A ``host_key`` extra as an OpenSSH public key line.

    Airflow's SSH provider takes ``ssh-ed25519 AAAA…`` or a bare base64 blob (read as RSA).
    """
    text = text.strip()
    return text if " " in text else f"ssh-rsa {text}"


def sftp_endpoint_from_connection(fields: ConnectionFields) -> SftpEndpoint:
    """The engine's SFTP endpoint for an Airflow SSH or SFTP connection.

    Extras follow Airflow's SSH provider (``key_file``, ``private_key``,
    ``private_key_passphrase``, ``host_key``, ``no_host_key_check``, ``look_for_keys``,
    ``conn_timeout``) plus ``known_hosts`` (a file). Host keys are always verified: unlike the
    SSH provider, a missing ``no_host_key_check`` means strict checking, and
    ``no_host_key_check: true`` only trusts (and records) a *new* key — a changed key is refused.
    """
    conn_id = fields.get("conn_id") or "sftp"
    extra = fields.get("extra") or {}
    host = fields.get("host")
    if not host:
        raise ConfigError(f"Connection {conn_id!r} has no host", "set the connection's Host")
    key_files = extra.get("key_file") or ()
    identity_files = (key_files,) if isinstance(key_files, str) else tuple(key_files)
    private_key = extra.get("private_key")
    private_keys = (private_key,) if private_key else ()
    if _flag(extra, "allow_host_key_change", False, conn_id):
        log.warning(
            "Connection %r sets allow_host_key_change; ignored: a changed host key is refused",
            conn_id,
        )
    policy = HostKeyPolicy.STRICT
    if _flag(extra, "no_host_key_check", False, conn_id):
        policy = HostKeyPolicy.ACCEPT_NEW
        log.warning(
            "Connection %r sets no_host_key_check: an unknown host key of %s is trusted on first "
            "use and recorded; a changed key is still refused",
            conn_id,
            host,
        )
    host_key = extra.get("host_key")
    values: dict[str, Any] = {
        "host": host,
        "port": int(fields.get("port") or 22),
        "username": fields.get("login") or None,
        "password": fields.get("password") or None,
        "identity_files": identity_files,
        "private_keys": private_keys,
        "passphrase": extra.get("private_key_passphrase") or None,
        "use_agent": _flag(extra, "look_for_keys", True, conn_id),
        "known_hosts": extra.get("known_hosts") or None,
        "host_key_policy": policy,
        "trusted_host_keys": (host_key_line(host_key),) if host_key else (),
    }
    timeout = _number(extra, "conn_timeout", conn_id)
    if timeout:
        values["connect_timeout_seconds"] = timeout
    return with_link(
        SftpEndpoint(**values),
        connections=extra.get("connections"),
        window=extra.get("window"),
        bwlimit=extra.get("bwlimit"),
        jump=extra.get("jump") or extra.get("proxy_jump"),
        follow_symlinks=extra.get("follow_symlinks"),
        where=f"Connection {conn_id!r}: extra",
    )


def with_link(
    endpoint: SftpEndpoint,
    *,
    connections: int | str | None = None,
    window: int | str | None = None,
    bwlimit: int | str | None = None,
    jump: str | None = None,
    follow_symlinks: bool | str | None = None,
    where: str = "argument",
) -> SftpEndpoint:
    """``endpoint`` with the link tunables given (None keeps its value), checked: connections
    per host, the SSH window (bytes or ``16MiB``), ``bwlimit`` (bytes/s or ``20M`` = 20 MB/s),
    a ``jump`` host (``[user@]host[:port]``) and ``follow_symlinks``. ``where`` starts messages
    (``Connection 'x': extra`` for connection extras)."""
    changes: dict[str, Any] = {}
    try:
        if connections not in (None, ""):
            text = str(connections).strip()
            if not text.isdigit():
                raise UsageError(f"'connections' is {connections!r}, not a count", "")
            changes["connections"] = int(text)
        if window not in (None, ""):
            changes["window_bytes"] = window if isinstance(window, int) else parse_size(str(window))
        if bwlimit not in (None, ""):
            changes["bwlimit_bytes_per_second"] = (
                bwlimit if isinstance(bwlimit, int) else parse_rate(str(bwlimit), "bwlimit")
            )
    except UsageError as exc:
        raise ConfigError(f"{where}: {exc.message}", exc.hint) from exc
    if jump:
        changes["jump"] = str(jump).strip()
    if follow_symlinks is not None:
        text = str(follow_symlinks).strip().lower()
        if not isinstance(follow_symlinks, bool) and text not in _TRUE | _FALSE:
            raise ConfigError(
                f"{where} 'follow_symlinks' is {follow_symlinks!r}, not true or false", ""
            )
        changes["follow_symlinks"] = follow_symlinks is True or text in _TRUE
    linked = replace(endpoint, **changes)
    problems = linked.link_problems()
    if problems:
        name, message = problems[0]
        shown = {"window_bytes": "window", "bwlimit_bytes_per_second": "bwlimit"}.get(name, name)
        raise ConfigError(f"{where} {shown!r} {message}", "")
    return linked


def s3_endpoint_from_connection(fields: ConnectionFields | None) -> S3Endpoint:
    """The engine's S3 endpoint for an Airflow AWS connection (``None``: the AWS chain).

    Reads login/password (or the ``aws_access_key_id``/``aws_secret_access_key`` extras),
    ``aws_session_token``, ``region_name``, ``endpoint_url`` (or ``service_config.s3``),
    ``profile_name``, ``verify`` and ``config_kwargs.s3.addressing_style``. Role assumption
    is not supported and fails rather than silently using other credentials.
    """
    if fields is None:
        return S3Endpoint()
    conn_id = fields.get("conn_id") or "aws"
    extra = fields.get("extra") or {}
    if extra.get("role_arn"):
        raise ConfigError(
            f"Connection {conn_id!r} uses role_arn, which the streaming operator does not assume",
            "give the worker the role (instance profile / IRSA) or use access keys",
        )
    service = (extra.get("service_config") or {}).get("s3") or {}
    addressing = ((extra.get("config_kwargs") or {}).get("s3") or {}).get("addressing_style")
    if addressing is None:
        addressing = (extra.get("s3") or {}).get("addressing_style")
    endpoint_url = service.get("endpoint_url") or extra.get("endpoint_url") or extra.get("host")
    verify = extra.get("verify")
    if isinstance(verify, str) and verify.strip().lower() not in _TRUE | _FALSE:
        raise ConfigError(
            f"Connection {conn_id!r}: extra 'verify' is a CA bundle ({verify})",
            "set AWS_CA_BUNDLE on the worker instead, or verify: true / false",
        )
    return S3Endpoint(
        endpoint_url=endpoint_url or None,
        region=extra.get("region_name") or extra.get("region") or None,
        profile=extra.get("profile_name") or extra.get("profile") or None,
        access_key_id=fields.get("login") or extra.get("aws_access_key_id") or None,
        secret_access_key=fields.get("password") or extra.get("aws_secret_access_key") or None,
        session_token=extra.get("aws_session_token") or None,
        path_style=addressing == "path",
        verify_tls=True if verify is None else _flag(extra, "verify", True, conn_id),
    )


def conflict_policy_for(
    replace: bool, conflict_policy: str | ConflictPolicy | None
) -> ConflictPolicy:
    """``conflict_policy`` when given, else ``replace`` as SFTPToS3Operator means it."""
    if conflict_policy is None:
        return ConflictPolicy.OVERWRITE if replace else ConflictPolicy.SKIP_EXISTING
    try:
        return ConflictPolicy(conflict_policy)
    except ValueError as exc:
        choices = ", ".join(p.value for p in ConflictPolicy)
        raise ConfigError(
            f"Unknown conflict_policy {conflict_policy!r}", f"use one of {choices}"
        ) from exc
