"""The far-handshake rule of :class:`LoginClock`, on a clock the test moves (no real time):
which handshakes start a far host's other logins early, and which never do."""

from __future__ import annotations

import pytest

from sftp_s3_tui.engine.sftp.connect import LoginClock

BAR = 0.05  # the pool's SURELY_FAR × FAR_RTT_SECONDS


def _login(exchange: float, authentication: float) -> list[str]:
    """Phases at the given spans; the phase at which ``on_far`` was called, if any."""
    now = [100.0]
    called: list[str] = []
    current = ["connected"]
    clock = LoginClock(BAR, lambda: called.append(current[0]), now=lambda: now[0])
    for name, after in (("connected", 0.0), ("auth", exchange), ("authenticated", authentication)):
        now[0] += after
        current[0] = name
        clock.phase(name)
    return called


def test_a_host_100_ms_away_is_far_once_authenticated_never_before() -> None:
    """Not as authentication begins: an early login could then overtake this one on a
    server that takes one connection per user, and the first login would be refused."""
    assert _login(0.31, 0.325) == ["authenticated"]
    assert _login(5.0, 0.001) == ["authenticated"]  # a very far handshake, a quick auth


def test_a_host_50_ms_away_is_far_once_authenticated() -> None:
    assert _login(0.17, 0.175) == ["authenticated"]


@pytest.mark.parametrize(
    ("exchange", "authentication"),
    [
        (0.065, 0.045),  # loopback at load 4 with the S3 stack imported alongside
        (0.19, 0.03),  # one busy moment during the key exchange
        (0.02, 0.4),  # one during authentication (a slow agent, say)
        (0.06, 0.06),  # a host ~20 ms away: the RTT samples decide, later
    ],
)
def test_no_early_logins_without_a_far_handshake(exchange: float, authentication: float) -> None:
    assert _login(exchange, authentication) == []
