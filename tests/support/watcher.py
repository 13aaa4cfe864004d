"""A ``watch`` subprocess read line by line, and waiting for what it prints."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from typing import Any


class Watcher:
    """A ``watch`` subprocess whose --json lines are collected as they come."""

    def __init__(self, args: list[str]) -> None:
        self.lines: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def files(self) -> list[str]:
        return [line["key"] for line in self.lines if "key" in line]

    def polls(self) -> int:
        return max((line["poll"] for line in self.lines if "poll" in line), default=0)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)
        return self.process.returncode, err


def wait_for(condition: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
