"""Real servers on loopback for the demo and the tests: asyncssh SFTP, moto S3, sample files.

Nothing here is mocked at the protocol level: the SFTP server speaks SSH on a TCP port and the S3
server answers HTTP, so the engine talks to them exactly as it would to production servers.

The package: ``content`` (deterministic sample bytes and the sample tree), ``sftp_server``,
``s3_server``, ``environment`` (both servers seeded, for ``--demo``), ``settings`` (names),
``children`` (the child-process entry points behind ``python -m sftp_s3_tui.demo``).
"""

from __future__ import annotations

from .children import main
from .content import (
    SampleFile,
    csv_blocks,
    make_sample_tree,
    make_sample_tree_in_subprocess,
    pattern_blocks,
    pattern_bytes,
    sample_files,
    write_blocks,
)
from .environment import DemoEnvironment
from .s3_server import EmbeddedS3Server
from .settings import (
    DEMO_ACCESS_KEY_ID,
    DEMO_BUCKETS,
    DEMO_PASSWORD,
    DEMO_REGION,
    DEMO_SECRET_ACCESS_KEY,
    DEMO_USERNAME,
    LOOPBACK,
    MOTO_KEY_BUFFER_SIZE,
    SAMPLE_MTIME,
)
from .sftp_server import (
    EmbeddedSftpServer,
    SftpServerStats,
    die_with_parent,
    free_port,
    known_hosts_entry,
    openssh_public_key,
)

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_BUCKETS",
    "DEMO_PASSWORD",
    "DEMO_REGION",
    "DEMO_SECRET_ACCESS_KEY",
    "DEMO_USERNAME",
    "LOOPBACK",
    "MOTO_KEY_BUFFER_SIZE",
    "SAMPLE_MTIME",
    "DemoEnvironment",
    "EmbeddedS3Server",
    "EmbeddedSftpServer",
    "SampleFile",
    "SftpServerStats",
    "csv_blocks",
    "die_with_parent",
    "free_port",
    "known_hosts_entry",
    "main",
    "make_sample_tree",
    "make_sample_tree_in_subprocess",
    "openssh_public_key",
    "pattern_blocks",
    "pattern_bytes",
    "sample_files",
    "write_blocks",
]
