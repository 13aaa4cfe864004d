"""The real program under a pseudo-terminal: the demo, a copy started with the keys, then
ctrl+q mid-run. What it prints after leaving the screen is what a user sees in their shell
(the pilot tests never reach run_app's own loop, its gc.freeze or the interpreter's exit)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: Escape sequences (CSI, OSC, charset) between the words a terminal shows.
ESCAPES = re.compile(
    r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()=>][0-9A-Za-z]?"
)


#: The CLI, then a full collection while logging still works: whatever the run left open (an
#: HTTP session, a connection) says so now rather than at the interpreter's exit, where the
#: warning may or may not be printed.
COLLECT_AFTER_MAIN = (
    "import gc, sys; from sftp_s3_tui.cli.main import main; code = main(sys.argv[1:]); "
    "gc.unfreeze(); gc.collect(); sys.exit(code)"
)


class Terminal:
    """A child process on a pseudo-terminal, and everything it has written so far."""

    def __init__(
        self, *args: str, columns: int = 120, rows: int = 40, env: dict[str, str] | None = None
    ) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = dict(
            os.environ, TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows), **(env or {})
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", COLLECT_AFTER_MAIN, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""
        self.closed = False

    @property
    def text(self) -> str:
        return ESCAPES.sub("", self.raw.decode(errors="replace"))

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            self.closed = True
        self.raw += chunk

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float = 180) -> None:
        """Read until ``condition(text)``; fail (with the tail of the output) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition(self.text):
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"no {what}; the terminal showed:\n{self.text[-3000:]}")
            self._read(0.2)

    def wait_for_exit(self, timeout: float = 180) -> int:
        """Read everything the process writes until it closes the terminal; its exit code."""
        self.wait_for(lambda _text: self.closed, "the end of the program", timeout)
        return self.process.wait(timeout=60)

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        """End the program if a test left it running: SIGTERM first, which it handles as a
        quit (its temp files go; a SIGKILL left the demo's ~0.6 GB each time), then SIGKILL."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        os.close(self.master)


@pytest.fixture
def demo() -> Iterator[Terminal]:
    terminal = Terminal("--demo")
    try:
        yield terminal
    finally:
        terminal.close()


DOWN = "\x1b[B"
CTRL_Q = "\x11"


def test_quitting_the_real_tui_mid_copy_leaves_no_http_session_open(demo: Terminal) -> None:
    """The issue: ``ERROR asyncio: Unclosed client session`` printed after quitting while a
    transfer ran. Every client and connection is closed before the loop ends."""
    demo.wait_for(lambda text: "Plan…" in text and "customers_2026.csv" in text, "browse")
    demo.send(DOWN + DOWN)  # .. → logs/ → customers_2026.csv (300 MiB)
    demo.wait_for(lambda text: text.count("customers_2026.csv") > 1, "the cursor's move")
    mark = len(demo.text)
    demo.send("c")
    demo.wait_for(lambda text: re.search(r"parts \d+/\d+", text[mark:]) is not None, "a copy")
    demo.send(CTRL_Q)
    demo.wait_for(lambda text: "Abort them" in text[mark:], "the quit question")
    mark = len(demo.text)
    demo.send("y")
    assert demo.wait_for_exit() == 0, demo.text[-3000:]
    after = demo.text[mark:]
    assert "Aborted 1 unfinished transfer(s)" in after, after[-3000:]
    assert "Unclosed" not in after and "Traceback" not in after, after[-3000:]


def test_quitting_while_the_demo_starts_prints_nothing_but_the_end(demo: Terminal) -> None:
    """ctrl+q while the demo writes its sample tree (a grandchild process): the writer is
    stopped and its pipe closed on the loop, not left to the collector after the loop
    closed ("Exception ignored … RuntimeError: Event loop is closed")."""
    demo.wait_for(lambda text: "Starting the demo" in text, "the demo starting")
    demo.send(CTRL_Q)
    assert demo.wait_for_exit() == 0, demo.text[-3000:]
    for bad in ("Traceback", "Exception ignored", "Event loop is closed", "Unclosed"):
        assert bad not in demo.text, demo.text[-3000:]


@pytest.fixture
def demo_in_tmp(tmp_path: Path) -> Iterator[Terminal]:
    """The demo with its own temp folder (``TMPDIR``): what it leaves there can be seen."""
    terminal = Terminal("--demo", env={"TMPDIR": str(tmp_path)})
    try:
        yield terminal
    finally:
        terminal.close()


def _demo_folder(tmp_path: Path) -> Path:
    [folder] = tmp_path.glob("sftp-s3-demo-*")
    return folder


def test_a_closed_terminal_ends_the_demo_and_leaves_no_files(
    demo_in_tmp: Terminal, tmp_path: Path
) -> None:
    """Closing the terminal window (SIGHUP) ended the process at once: the demo's ~0.6 GB
    sample tree stayed in the temp folder. It now ends as a quit does (exit 130)."""
    demo_in_tmp.wait_for(lambda text: "Plan…" in text and "customers_2026.csv" in text, "browse")
    folder = _demo_folder(tmp_path)
    assert folder.is_dir()
    os.killpg(demo_in_tmp.process.pid, signal.SIGHUP)
    assert demo_in_tmp.process.wait(timeout=60) == 130
    assert not folder.exists()


def test_sigterm_mid_copy_aborts_it_and_says_so(demo_in_tmp: Terminal, tmp_path: Path) -> None:
    """A kill (SIGTERM) while a copy runs: its upload is aborted as ctrl+q's "Abort them"
    does, nobody being there to ask, and the process ends with 130 as the CLI does."""
    demo_in_tmp.wait_for(lambda text: "Plan…" in text and "customers_2026.csv" in text, "browse")
    folder = _demo_folder(tmp_path)
    demo_in_tmp.send(DOWN + DOWN)  # .. → logs/ → customers_2026.csv (300 MiB)
    demo_in_tmp.wait_for(lambda text: text.count("customers_2026.csv") > 1, "the cursor's move")
    mark = len(demo_in_tmp.text)
    demo_in_tmp.send("c")
    demo_in_tmp.wait_for(
        lambda text: re.search(r"parts \d+/\d+", text[mark:]) is not None, "a copy"
    )
    mark = len(demo_in_tmp.text)
    os.killpg(demo_in_tmp.process.pid, signal.SIGTERM)
    assert demo_in_tmp.wait_for_exit() == 130, demo_in_tmp.text[-3000:]
    after = demo_in_tmp.text[mark:]
    assert "Aborted 1 unfinished transfer(s)" in after, after[-3000:]
    assert "Traceback" not in after and "Unclosed" not in after, after[-3000:]
    assert not folder.exists()
