"""Without a terminal the TUI refuses with one message instead of drawing into a pipe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sftp_s3_tui.engine.errors import ConfigError
from sftp_s3_tui.ui.terminal import require_terminal


def test_piped_output_is_refused_with_one_clear_message(tmp_path: Path) -> None:
    with (
        open(tmp_path / "out.txt", "w") as piped,
        open(os.devnull) as no_tty_in,
        pytest.raises(ConfigError) as raised,
    ):
        require_terminal(stdin=no_tty_in, stdout=piped)
    assert "needs a terminal" in raised.value.message
    assert "sftp-s3-tui copy" in raised.value.hint


def test_a_real_terminal_passes() -> None:
    main, secondary = os.openpty()
    try:
        with open(secondary, "w", closefd=False) as out, open(secondary, closefd=False) as inp:
            require_terminal(stdin=inp, stdout=out)
    finally:
        os.close(main)
        os.close(secondary)
