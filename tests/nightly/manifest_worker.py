"""A run that writes rows to an ``s3://`` manifest and then hangs until it is killed:
``python -m tests.nightly.manifest_worker TARGET ENDPOINT_URL SPOOL_DIR FIRST COUNT``.

It prints ``written`` once every row is durable in its spool; the test then kills it with
SIGKILL, as a crash or an OOM kill would, so it never merges its last rows itself."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.nightly.manifest import Manifest
from sftp_s3_tui.engine.s3.operations import open_client


async def main(target: str, endpoint_url: str, spool_dir: str, first: int, count: int) -> None:
    async with open_client(S3Endpoint(endpoint_url=endpoint_url)) as client:
        manifest = await Manifest.open(target, s3=client, spool_dir=Path(spool_dir))
        for n in range(first, first + count):
            await manifest.write({"kind": "file", "n": n})
        print("written", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    target, url, spool, first, count = sys.argv[1:6]
    asyncio.run(main(target, url, spool, int(first), int(count)))
