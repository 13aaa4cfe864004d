"""Fixed names of the demo: addresses, demo credentials, buckets, moto tuning."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
DEMO_BUCKETS = ("landing", "archive")
DEMO_REGION = "us-east-1"
DEMO_ACCESS_KEY_ID = "testing"
DEMO_SECRET_ACCESS_KEY = "testing"

# moto keeps each object (and each multipart part) in a SpooledTemporaryFile whose in-memory
# limit defaults to ~5 MiB (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE, read from os.environ every time a
# key is created). Above it the data goes to a temp file: in the demo that would show up as
# *our* process's disk writes, contradicting the "0 B written to disk" the app is about.
# Objects therefore stay in memory (which moto's process RSS shows instead).
MOTO_KEY_BUFFER_SIZE = 64 * 1024**4  # 64 TiB: never spool to disk
_MOTO_BUFFER_ENV = "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"
_S3_STARTUP_TIMEOUT_SECONDS = 30.0
_TREE_READY = b"sample tree ready"

#: Fixed modification time of the sample tree (2026-11-20 09:30:00 UTC), for stable screenshots.
SAMPLE_MTIME = 1_795_167_000
