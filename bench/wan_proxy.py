"""A far SFTP server on loopback: the test suite's latency proxy, in a process of its own.

``python -m bench.wan_proxy --target-port P --rtt-ms 50`` (or :func:`start` from Python) runs
``tests/support/fault_proxy.py``'s delay line: each chunk forwarded RTT/2 after it arrived, per
direction, in order, with no bandwidth cap. The SSH flow-control window and the requests in
flight are then what limits a client, as on a real long link. Its own process keeps its CPU
out of the harness (which polls the clients' RSS) and out of the measured clients, like
sshd's. It prints its port on the first line of stdout and runs until SIGTERM.

Why not netem: this machine's kernel has no ``sch_netem`` (``tc qdisc add … netem`` answers
"Specified qdisc kind is unknown"), so a network namespace with a netem veth is not an option.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LatencyProxy:
    """A running ``bench.wan_proxy`` process in front of one server."""

    port: int
    rtt_seconds: float
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(target_host: str, target_port: int, rtt_seconds: float) -> LatencyProxy:
    """Start the latency proxy in its own process in front of ``target_host:target_port``."""
    from sftp_s3_tui.demo import die_with_parent

    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.wan_proxy",
            "--target-host",
            target_host,
            "--target-port",
            str(target_port),
            "--rtt-ms",
            f"{rtt_seconds * 1000:g}",
        ],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=die_with_parent,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"the latency proxy did not start (said {line!r})")
    return LatencyProxy(int(line), rtt_seconds, process)


def main() -> None:
    from tests.support import fault_proxy as proxy

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    running = proxy.start(args.target_host, args.target_port, rtt_seconds=args.rtt_ms / 1000)
    print(running.port, flush=True)
    try:
        stop.wait()
    finally:
        running.stop()


if __name__ == "__main__":
    main()
