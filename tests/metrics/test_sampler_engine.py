"""The sampler's numbers after a real transfer of known size, and /metrics serving them."""

from __future__ import annotations

import urllib.request
from typing import Any

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import EventBus
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from sftp_s3_tui.metrics import MetricsExporter, Sampler
from tests.support.metrics import metric_value
from tests.support.servers import SftpServerInfo

MiB = 1 << 20


async def test_sampler_and_metrics_endpoint_agree_with_the_transfer(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    big = embedded_sftp.write_file("in/big.bin", size=17 * MiB + 3, seed=2)
    small = embedded_sftp.write_file("in/small.csv", b"a,b\n" * 100)
    bus = EventBus()
    options = TransferOptions(part_size=5 * MiB)
    async with TransferQueue(s3_endpoint, options, bus=bus) as queue:
        sampler = Sampler(bus, interval=0.2, buffers=queue.buffers)
        async with sampler, MetricsExporter(sampler, metrics_port=0) as exporter:
            jobs = await queue.expand(
                embedded_sftp.endpoint(),
                embedded_sftp.remote_path("in/"),
                parse_s3_url(f"s3://{bucket}/"),
            )
            await queue.run(jobs)
            snapshot = sampler.sample_now()
            url = f"http://127.0.0.1:{exporter.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()

    assert snapshot.bytes_transferred == big.size + small.size
    assert snapshot.parts_done == 4 + 1
    assert snapshot.files_done == 2 and snapshot.files_failed == 0
    assert snapshot.parts_in_flight == 0
    assert snapshot.rss_bytes is not None and snapshot.rss_bytes > 0
    assert metric_value(text, "sftp_s3_bytes_transferred_total") == big.size + small.size
    assert metric_value(text, "sftp_s3_parts_completed_total") == 5
    assert metric_value(text, "sftp_s3_sftp_read_seconds_count") == 5
    assert metric_value(text, "sftp_s3_s3_upload_seconds_count") == 5
