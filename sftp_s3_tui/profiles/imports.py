"""Profiles imported from the user's ~/.ssh/config and ~/.aws config files."""

from __future__ import annotations

import configparser
import getpass
import logging
import os
import re
import shlex
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ..engine.errors import ConfigError
from .model import Profile, S3Settings, SftpAuth, SftpSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SshHost:
    """A ``Host`` entry of an OpenSSH client config, as ssh would resolve it."""

    alias: str
    hostname: str
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    proxy_jump: str | None = None
    known_hosts: str | None = None

    def to_sftp_settings(self) -> SftpSettings:
        """The SFTP part of a profile: key auth with the first IdentityFile, else the agent.

        ProxyJump is not carried over (the engine does not support jump hosts yet); check
        ``proxy_jump`` and tell the user.
        """
        key_file = self.identity_files[0] if self.identity_files else None
        return SftpSettings(
            host=self.hostname,
            port=self.port or 22,
            user=self.user,
            auth=SftpAuth.KEY if key_file else SftpAuth.AGENT,
            key_file=key_file,
            known_hosts=self.known_hosts,
        )

    def to_profile(self, name: str | None = None) -> Profile:
        """A new profile (named after the alias) with this host as its source."""
        return Profile(name=name or self.alias, sftp=self.to_sftp_settings())


_SSH_KEYWORD = re.compile(r"^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$")
_MAX_INCLUDE_DEPTH = 16


def _ssh_aliases(path: Path, found: list[str], depth: int = 0) -> None:
    """Collect concrete ``Host`` aliases (no wildcards or negations), following Include."""
    if depth > _MAX_INCLUDE_DEPTH:
        return
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        match = _SSH_KEYWORD.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        keyword, rest = match.group(1).lower(), match.group(2)
        try:
            words = shlex.split(rest, comments=True)
        except ValueError:
            continue  # asyncssh reports the bad line when the host is resolved
        if keyword == "host":
            for word in words:
                for pattern in word.split(","):
                    if pattern and not set(pattern) & set("*?!") and pattern not in found:
                        found.append(pattern)
        elif keyword == "include":
            for word in words:
                include = Path(word).expanduser()
                if not include.is_absolute():
                    include = Path.home() / ".ssh" / include
                anchor = Path(include.anchor)
                for included in sorted(anchor.glob(str(include.relative_to(anchor)))):
                    if included.is_file():
                        _ssh_aliases(included, found, depth + 1)


def import_ssh_config(path: Path | str | None = None) -> list[SshHost]:
    """Hosts of an OpenSSH client config (default ``~/.ssh/config``); wildcards skipped.

    Each alias is resolved with asyncssh's config parser, as ssh would (``Host *``
    defaults, Include, Match — including ``Match exec``, which runs its command as ssh
    does). A missing file gives an empty list.
    """
    from asyncssh.config import ConfigParseError, SSHClientConfig

    config_path = Path(path).expanduser() if path else Path.home() / ".ssh" / "config"
    if not config_path.is_file():
        return []
    aliases: list[str] = []
    _ssh_aliases(config_path, aliases)
    try:
        local_user = getpass.getuser()
    except Exception:
        local_user = ""
    hosts = []
    for alias in aliases:
        try:
            config = SSHClientConfig.load(
                None, [config_path], False, False, False, local_user, (), alias, ()
            )
        except ConfigParseError as exc:
            raise ConfigError(f"Cannot read SSH config: {exc}", "fix the file and retry") from None
        except OSError as exc:
            raise ConfigError(
                f"Cannot read SSH config {config_path} ({exc.strerror})", "check its permissions"
            ) from None
        port = config.get("Port")
        user = config.get("User")
        identity = cast(list[str], config.get("IdentityFile") or [])
        jump = config.get("ProxyJump")
        known_hosts = cast(list[str], config.get("UserKnownHostsFile") or [])
        hosts.append(
            SshHost(
                alias=alias,
                hostname=str(config.get("Hostname") or alias),
                port=port if isinstance(port, int) else None,
                user=str(user) if user else None,
                identity_files=tuple(str(i) for i in identity if str(i).lower() != "none"),
                proxy_jump=str(jump) if jump and str(jump).lower() != "none" else None,
                known_hosts=str(known_hosts[0]) if known_hosts else None,
            )
        )
    return hosts


@dataclass(frozen=True)
class AwsProfile:
    """A named AWS profile; only its name is referenced, never its keys."""

    name: str
    region: str | None = None
    endpoint_url: str | None = None

    def to_s3_settings(self) -> S3Settings:
        """The S3 part of a profile that uses this AWS profile for credentials."""
        return S3Settings(aws_profile=self.name, region=self.region, endpoint_url=self.endpoint_url)


_INI_SECTION = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")


def _read_aws_config(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return parser
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read AWS config {path} ({exc})", "check the file") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        # Never echo the offending line: it may hold a key.
        line = getattr(exc, "lineno", None)
        errors = getattr(exc, "errors", None)
        if line is None and errors:
            line = errors[0][0]
        where = f" line {line}" if line else ""
        raise ConfigError(
            f"Cannot read AWS config {path}{where}: not in INI format ({type(exc).__name__})",
            "fix the file, e.g. with `aws configure`",
        ) from None
    return parser


def _services_endpoint(parser: configparser.RawConfigParser, services: str) -> str | None:
    """``endpoint_url`` of ``s3`` in a ``[services NAME]`` section, if any."""
    section = f"services {services}"
    if not parser.has_section(section):
        return None
    for line in parser.get(section, "s3", fallback="").splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip() == "endpoint_url":
            return value.strip()
    return None


def import_aws_profiles(
    config: Path | str | None = None, credentials: Path | str | None = None
) -> list[AwsProfile]:
    """Profiles of the AWS config and credentials files (names, region, endpoint URL).

    Defaults follow the AWS CLI: ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE`` or
    ``~/.aws/config`` / ``~/.aws/credentials``. Only section names are taken from the
    credentials file; no key is read into a profile.
    """
    config_path = Path(config or os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    credentials_path = Path(
        credentials or os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    ).expanduser()
    parser = _read_aws_config(config_path)
    names: list[str] = []
    sections: dict[str, str] = {}
    for section in parser.sections():
        if section == "default":
            name = "default"
        elif section.startswith("profile "):
            name = section[len("profile ") :].strip()
        else:
            continue  # sso-session, services, …
        sections.setdefault(name, section)
        if name not in names:
            names.append(name)
    with suppress(FileNotFoundError, UnicodeDecodeError):
        for line in credentials_path.read_text(encoding="utf-8").splitlines():
            header = _INI_SECTION.match(line)
            if header and header.group(1) not in names:
                names.append(header.group(1))
    profiles = []
    for name in names:
        config_section = sections.get(name)
        region: str | None = None
        endpoint_url: str | None = None
        if config_section:
            region = parser.get(config_section, "region", fallback=None) or None
            endpoint_url = parser.get(config_section, "endpoint_url", fallback=None) or None
            services = parser.get(config_section, "services", fallback=None)
            if not endpoint_url and services:
                endpoint_url = _services_endpoint(parser, services)
        profiles.append(AwsProfile(name=name, region=region, endpoint_url=endpoint_url))
    return profiles
