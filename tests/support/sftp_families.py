"""Two more real SFTP server families for the tests: ProFTPD mod_sftp and Dropbear running
Green End's gesftpserver (Debian ``proftpd-core proftpd-mod-crypto dropbear-bin gesftpserver``).

Both run in the foreground on a free loopback port with their own keys, like the sshd fixture,
and log in as the current user with a fresh ed25519 key. Partners run them as often as OpenSSH
and they behave differently: neither advertises ``limits@openssh.com`` (the client must find
the read size itself), and their rename, handle and extension sets differ.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import asyncssh
import pytest

from sftp_s3_tui.demo import (
    LOOPBACK,
    die_with_parent,
    free_port,
    known_hosts_entry,
    openssh_public_key,
)
from tests.support.servers import (
    STARTUP_TIMEOUT_SECONDS,
    SftpServerInfo,
    read_back,
    run_in_fresh_loop,
    unavailable,
    wait_for_ssh_banner,
)

PROFTPD = os.environ.get("SFTP_S3_PROFTPD", "/usr/sbin/proftpd")
DROPBEAR = os.environ.get("SFTP_S3_DROPBEAR", "/usr/sbin/dropbear")
DROPBEARKEY = os.environ.get("SFTP_S3_DROPBEARKEY", "/usr/bin/dropbearkey")
GESFTPSERVER = os.environ.get("SFTP_S3_GESFTPSERVER", "/usr/libexec/gesftpserver")
PROFTPD_MODULES = Path("/usr/lib/proftpd")

#: The SFTP server families a ``@pytest.mark.sftp_families`` test runs against.
FAMILIES = ("openssh", "proftpd", "dropbear")
Family = Literal["openssh", "proftpd", "dropbear"]


def _executable(path: str, hint: str) -> str:
    found = path if os.access(path, os.X_OK) else shutil.which(path)
    if found is None:
        unavailable(f"{path} not found; install {hint}")
    return found


_PROFTPD_CONFIG = """\
ServerName "sftp-s3-tui test"
ServerType standalone
DefaultServer on
Port {port}
SocketBindTight on
DefaultAddress 127.0.0.1
User {user}
Group {group}
PidFile {base}/proftpd.pid
ScoreboardFile {base}/proftpd.scoreboard
DelayTable none
WtmpLog off
TransferLog none
SystemLog {base}/proftpd-system.log
UseIPv6 off
UseReverseDNS off
RootLogin on
UseFtpUsers off
RequireValidShell off
MaxInstances 200
ModulePath {modules}
LoadModule mod_sftp.c
SFTPEngine on
SFTPLog {base}/proftpd-sftp.log
SFTPHostKey {base}/host_rsa_key
SFTPAuthorizedUserKeys file:{base}/authorized_keys.rfc4716
SFTPAuthMethods publickey
SFTPCompression off
<Directory />
  AllowOverwrite on
</Directory>
{extra}
"""


class _Family:
    """What both servers share: keys, a files folder, start with retries, stop."""

    kind: Family
    name: str

    def __init__(self, base: Path) -> None:
        self.base = base
        self.log_file = base / f"{self.kind}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: SftpServerInfo | None = None

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _host_public_key(self) -> str:
        raise NotImplementedError

    def _prepare(self, client_key: asyncssh.SSHKey) -> None:
        raise NotImplementedError

    def start(self) -> SftpServerInfo:
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        root = base / "files"
        root.mkdir(exist_ok=True)
        root.chmod(0o777)
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        identity = base / "id_ed25519"
        client_key.write_private_key(identity)
        identity.chmod(0o600)
        self._prepare(client_key)
        for _attempt in range(3):
            port = free_port()
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(
                    self._command(port),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=base,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                    preexec_fn=die_with_parent,
                )
            if self._wait_for_banner(port):
                break
            self.stop()
        else:
            self.stop()
            pytest.fail(f"{self.name} did not start; log:\n{self.log_tail()}")
        known_hosts = base / "known_hosts"
        known_hosts.write_text(known_hosts_entry(LOOPBACK, port, self._host_public_key()) + "\n")
        info = SftpServerInfo(
            kind=self.kind,
            host=LOOPBACK,
            port=port,
            username=getpass.getuser(),
            identity_file=identity,
            known_hosts=known_hosts,
            root=root,
            remote_root=str(root),
            log_file=self.log_file,
            server=self,
        )
        self.info = info
        probe = info.write_file(".probe", b"probe\n")
        try:
            data = run_in_fresh_loop(lambda: read_back(info, probe.remote_path, "key"))
        except Exception as error:
            self.stop()
            pytest.fail(f"key login to {self.name} failed: {error!r}\n{self.log_tail()}")
        assert data == b"probe\n"
        probe.local_path.unlink()
        return info

    def _wait_for_banner(self, port: int) -> bool:
        """True once ``port`` sends an SSH banner; False when the server died or never did."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                wait_for_ssh_banner(LOOPBACK, port, time.monotonic() + 0.5)
                return True
            except TimeoutError:
                continue
        return False

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.base.glob("*.log"))
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)  # the port is free again only once it is gone
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class ProFtpdServer(_Family):
    """ProFTPD 1.3.8 with mod_sftp, standalone in the foreground (``proftpd -n -c FILE``)."""

    kind: Family = "proftpd"
    name = "ProFTPD mod_sftp"
    #: Further configuration lines (e.g. ``MaxClientsPerUser 1``: a server that takes one
    #: login per user).
    extra_config = ""

    def _prepare(self, client_key: asyncssh.SSHKey) -> None:
        binary = _executable(PROFTPD, "proftpd-core")
        if not (PROFTPD_MODULES / "mod_sftp.so").exists():
            unavailable("ProFTPD's mod_sftp not found; install proftpd-mod-crypto")
        self.binary = binary
        keygen = _executable("ssh-keygen", "openssh-client")
        host_key = self.base / "host_rsa_key"
        host_key.unlink(missing_ok=True)
        subprocess.run(
            [keygen, "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", str(host_key)],
            check=True,
            capture_output=True,
        )
        public = self.base / "id_ed25519.pub"
        public.write_text(openssh_public_key(client_key) + "\n")
        # mod_sftp reads user keys in RFC 4716 form only.
        rfc4716 = subprocess.run(
            [keygen, "-e", "-f", str(public)], check=True, capture_output=True
        ).stdout
        (self.base / "authorized_keys.rfc4716").write_bytes(rfc4716)
        self._public_host_key = (self.base / "host_rsa_key.pub").read_text().strip()

    def _command(self, port: int) -> list[str]:
        user = pwd.getpwuid(os.geteuid())
        config = self.base / "proftpd.conf"
        config.write_text(
            _PROFTPD_CONFIG.format(
                port=port,
                user=user.pw_name,
                group=user.pw_gid if user.pw_uid else "root",
                base=self.base,
                modules=PROFTPD_MODULES,
                extra=self.extra_config,
            )
        )
        return [self.binary, "-n", "-q", "-c", str(config)]

    def _host_public_key(self) -> str:
        return self._public_host_key


class DropbearServer(_Family):
    """Dropbear 2022.83 running gesftpserver for every session (``-c``): it reads the user's
    own ``~/.ssh/authorized_keys`` (no option names another file), so the key line is added
    for the server's life and removed afterwards, under a lock (other test workers do too)."""

    kind: Family = "dropbear"
    name = "Dropbear + gesftpserver"

    def _prepare(self, client_key: asyncssh.SSHKey) -> None:
        self.binary = _executable(DROPBEAR, "dropbear-bin")
        keygen = _executable(DROPBEARKEY, "dropbear-bin")
        self.sftp_server = _executable(GESFTPSERVER, "gesftpserver")
        host_key = self.base / "dropbear_ed25519_host_key"
        host_key.unlink(missing_ok=True)
        subprocess.run(
            [keygen, "-t", "ed25519", "-f", str(host_key)], check=True, capture_output=True
        )
        shown = subprocess.run(
            [keygen, "-y", "-f", str(host_key)], check=True, capture_output=True, text=True
        ).stdout
        self._public_host_key = next(
            line for line in shown.splitlines() if line.startswith("ssh-")
        ).strip()
        self.host_key = host_key
        self.key_line = f"{openssh_public_key(client_key)} sftp-s3-tui-test-{os.getpid()}\n"
        _edit_authorized_keys(add=self.key_line)

    def _command(self, port: int) -> list[str]:
        return [
            self.binary,
            "-F",
            "-E",
            "-s",  # keys only
            "-p",
            f"{LOOPBACK}:{port}",
            "-r",
            str(self.host_key),
            "-P",
            str(self.base / "dropbear.pid"),
            "-c",
            self.sftp_server,
        ]

    def _host_public_key(self) -> str:
        return self._public_host_key

    def stop(self) -> None:
        super().stop()
        if getattr(self, "key_line", None):
            _edit_authorized_keys(remove=self.key_line)
            self.key_line = ""


def _edit_authorized_keys(*, add: str = "", remove: str = "") -> None:
    """Add or remove one line of the current user's ~/.ssh/authorized_keys (from the password
    database, not $HOME: the tests move $HOME), holding a lock against other workers."""
    ssh = Path(pwd.getpwuid(os.geteuid()).pw_dir) / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    path = ssh / "authorized_keys"
    with open(ssh / ".sftp-s3-tui-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lines = path.read_text().splitlines(keepends=True) if path.exists() else []
        if remove:
            lines = [line for line in lines if line != remove]
        if add and add not in lines:
            lines.append(add)
        path.write_text("".join(lines))
        path.chmod(0o600)


@contextlib.contextmanager
def running(
    kind: Literal["proftpd", "dropbear"], base: Path, *, proftpd_config: str = ""
) -> Iterator[SftpServerInfo]:
    """Start one of the two families under ``base``; stopped (and cleaned) afterwards.
    ``proftpd_config``: further lines for ProFTPD's configuration."""
    server: _Family = ProFtpdServer(base) if kind == "proftpd" else DropbearServer(base)
    if isinstance(server, ProFtpdServer):
        server.extra_config = proftpd_config
    try:
        yield server.start()
    finally:
        server.stop()
