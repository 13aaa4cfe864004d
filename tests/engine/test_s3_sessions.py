"""S3 sessions: one data loader for all (read once, in a thread), credentials per session."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, timedelta
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.s3.operations import check_bucket, open_client, session_for, warm_up


async def test_sessions_share_one_loader_and_keep_their_own_credentials() -> None:
    first = session_for(S3Endpoint(access_key_id="AKIAONE", secret_access_key="one"))
    second = session_for(S3Endpoint(access_key_id="AKIATWO", secret_access_key="two"))
    loaders = [s._session.get_component("data_loader") for s in (first, second)]
    assert loaders[0] is loaders[1]
    paths = loaders[0].search_paths
    assert len(paths) == len(set(paths))  # boto3's folder once, however many sessions
    keys = [(await s.get_credentials()).access_key for s in (first, second)]
    assert keys == ["AKIAONE", "AKIATWO"]


async def test_a_client_made_after_the_warm_up_in_a_thread_talks_to_the_store(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    await asyncio.to_thread(warm_up)
    for endpoint in (s3_endpoint, dataclasses.replace(s3_endpoint, path_style=False)):
        async with open_client(endpoint) as client:
            await check_bucket(client, bucket)


async def test_a_plain_http_endpoint_loads_no_ca_bundle_and_https_still_verifies(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    assert (s3_endpoint.endpoint_url or "").startswith("http://")
    async with open_client(s3_endpoint) as client:
        await check_bucket(client, bucket)
        http = client._endpoint.http_session
        assert http._verify is False
        connectors = [session.connector for session in http._sessions.values()]
        assert connectors and all(c is not None and c._ssl is False for c in connectors)
    tls = dataclasses.replace(s3_endpoint, endpoint_url="https://s3.example.invalid")
    async with open_client(tls) as client:
        assert client._endpoint.http_session._verify not in (False, None)


@pytest.mark.all_stores
async def test_dates_read_as_botocore_reads_them(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A listing's ISO dates go through ``datetime``, a HEAD's HTTP date through botocore's
    parser: the same instants as boto3's own client reads, time zone included."""
    s3.put_object(Bucket=bucket, Key="a.csv", Body=b"a\n")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["LastModified"]
    headed = s3.head_object(Bucket=bucket, Key="a.csv")["LastModified"]
    async with open_client(s3_endpoint) as client:
        ours_listed = (await client.list_objects_v2(Bucket=bucket))["Contents"][0]["LastModified"]
        ours_headed = (await client.head_object(Bucket=bucket, Key="a.csv"))["LastModified"]
    assert (ours_listed, ours_headed) == (listed, headed)
    assert ours_listed.utcoffset() == ours_headed.utcoffset() == timedelta(0)
    assert ours_listed.tzinfo is UTC  # read by datetime, not dateutil
