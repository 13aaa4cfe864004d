"""Child-process entry points: ``python -m sftp_s3_tui.demo s3-server | make-tree ROOT``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .content import make_sample_tree
from .s3_server import _serve_s3_child
from .settings import _TREE_READY, LOOPBACK


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sftp_s3_tui.demo s3-server | make-tree ROOT [--small]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sftp_s3_tui.demo")
    commands = parser.add_subparsers(dest="command", required=True)
    s3 = commands.add_parser("s3-server", help="serve moto S3; prints the bound port")
    s3.add_argument("--host", default=LOOPBACK)
    s3.add_argument("--port", type=int, default=0)
    tree = commands.add_parser("make-tree", help="write the sample tree")
    tree.add_argument("root", type=Path)
    tree.add_argument("--small", action="store_true", help="leave out the big files")
    args = parser.parse_args(argv)
    if args.command == "s3-server":
        _serve_s3_child(args.host, args.port)
    else:
        files = make_sample_tree(args.root, large=not args.small)
        sys.stdout.buffer.write(_TREE_READY + f" {len(files)} files\n".encode())
