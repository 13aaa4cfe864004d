"""What each part costs the client: Content-MD5 only where the store does not check CRC64NVME,
the SigV4 payload hash computed by the engine (off the event loop), not by botocore, and no
HEAD after a PutObject whose answer already proves the object."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.s3 import crt_data_plane
from sftp_s3_tui.engine.s3.operations import KNOWN_PAYLOAD_SIGNER
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import S3Store, SftpServerInfo
from tests.support.transfers import MiB, object_bytes

PART = 5 * MiB


@pytest.mark.all_stores
async def test_content_md5_is_left_out_only_where_the_store_checks_crc64nvme(
    openssh_sftp: SftpServerInfo,
    s3_store: S3Store,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SeaweedFS refused a wrong CRC64NVME in the store check, so its parts and PutObjects go
    without Content-MD5 (the CRC it checks replaces it); moto checks nothing, so there MD5
    stays on every request and the ETag stays the proof. On this http:// endpoint neither
    store checks a signed body's SHA-256 (the probe sends a wrong one and it is stored), so
    every body is signed UNSIGNED-PAYLOAD and none is hashed for it (a store that checks it
    keeps it: test_payload_signing). (What is sent is read from botocore's hooks: the
    PutObject goes through botocore here; the CRT data plane sends the same fields,
    test_crt_data_plane.)"""
    monkeypatch.setenv(crt_data_plane.ENV, "0")
    small = openssh_sftp.write_file("in/small.csv", size=70_000, seed=4)
    big = openssh_sftp.write_file("in/big.bin", size=2 * PART + 7, seed=5)
    sent: list[tuple[str, dict[str, str], bytes]] = []

    heads: list[str] = []

    def record(request: Any, **_: Any) -> None:
        if request.method == "HEAD":
            heads.append(request.url)
        body = request.body
        body = getattr(body, "buffer", body)
        if isinstance(body, bytes | bytearray) and body and "/in/" not in request.url:
            headers = {
                k.lower(): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            }
            sent.append((request.url, headers, bytes(body)))

    signers: list[str] = []

    def signer(operation_name: str, signature_version: str, **_: Any) -> None:
        if operation_name in ("PutObject", "UploadPart"):
            signers.append(signature_version)

    options = TransferOptions(part_size=PART)
    async with TransferQueue(s3_endpoint, options) as queue:
        assert queue._ctx is not None
        queue._ctx.s3.meta.events.register("before-send.s3", record)
        queue._ctx.s3.meta.events.register("before-sign.s3", signer)
        jobs = []
        for remote in (small, big):
            jobs += await queue.expand(
                openssh_sftp.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
            )
        results = await queue.run(jobs)

    expected = "crc64nvme-full-object" if s3_store.validates_checksums else "md5-etag"
    for result, remote in zip(results, (small, big), strict=True):
        assert result.status is TransferState.DONE, result.message
        assert result.verified_by == expected
        assert object_bytes(s3, bucket, result.key) == remote.read_bytes()
    ours = [(url, h, body) for url, h, body in sent if "small.csv" in url or "big.bin" in url]
    bodies = [(h, body) for _url, h, body in ours if len(body) in (70_000, PART, 7)]
    assert len(bodies) == 4  # one PutObject, three parts
    for headers, _body in bodies:
        assert headers["x-amz-checksum-crc64nvme"]
        assert ("content-md5" in headers) is not s3_store.validates_checksums
        assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert "expect" not in headers  # sent at once, no 100-continue round trip
    assert signers and set(signers) == {KNOWN_PAYLOAD_SIGNER}
    # the PutObject's answer proved the small file (its checked CRC64NVME, or its ETag): no
    # HEAD for it; the multipart object is still checked by HEAD after Complete
    assert not [url for url in heads if "small.csv" in url]
    assert [url for url in heads if "big.bin" in url]
