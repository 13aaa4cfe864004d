"""Raw S3 write limit: one aioboto3 multipart upload of a file's bytes from the page cache.

Each part is ``pread`` into a reused buffer (a memory copy: the file was just written and is
cached), then uploaded with the same part size and concurrency as the product.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aioboto3
from awscrt import checksums

from .common import add_s3_arguments, s3_config


async def upload(args: argparse.Namespace) -> None:
    size = os.path.getsize(args.file)
    fd = os.open(args.file, os.O_RDONLY)
    slots = asyncio.Semaphore(args.concurrency)
    free = [bytearray(args.part_size) for _ in range(args.concurrency)]
    session = aioboto3.Session()
    async with session.client(
        "s3", endpoint_url=args.endpoint_url, config=s3_config(args.concurrency + 4)
    ) as s3:
        extra = {"ChecksumAlgorithm": "CRC64NVME"} if args.checksum else {}
        created = await s3.create_multipart_upload(Bucket=args.bucket, Key=args.key, **extra)
        upload_id = created["UploadId"]

        async def part(number: int, offset: int) -> dict[str, object]:
            async with slots:
                buffer = free.pop()
                try:
                    length = min(args.part_size, size - offset)
                    body = memoryview(buffer)[:length]
                    os.preadv(fd, [body], offset)
                    payload = buffer if length == len(buffer) else bytes(body)
                    more = {}
                    if args.checksum:
                        crc = checksums.crc64nvme(body)
                        more["ChecksumCRC64NVME"] = _b64(crc)
                    response = await s3.upload_part(
                        Bucket=args.bucket,
                        Key=args.key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=payload,
                        ContentLength=length,
                        **more,
                    )
                    body.release()
                finally:
                    free.append(buffer)
                return {"PartNumber": number, "ETag": response["ETag"], **_part_crc(more)}

        offsets = range(0, size, args.part_size)
        parts = await asyncio.gather(*(part(n, o) for n, o in enumerate(offsets, start=1)))
        await s3.complete_multipart_upload(
            Bucket=args.bucket,
            Key=args.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": list(parts)},
        )
    os.close(fd)


def _b64(value: int) -> str:
    import base64

    return base64.b64encode(value.to_bytes(8, "big")).decode()


def _part_crc(more: dict[str, str]) -> dict[str, str]:
    return {"ChecksumCRC64NVME": more["ChecksumCRC64NVME"]} if more else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_s3_arguments(parser)
    parser.add_argument("--key", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--part-size", type=int, default=8 << 20)
    parser.add_argument("--checksum", action="store_true", help="per-part CRC64NVME, as ours")
    asyncio.run(upload(parser.parse_args()))


if __name__ == "__main__":
    main()
