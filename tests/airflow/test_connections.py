"""Airflow connections → engine endpoints, options and summaries: no Airflow needed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

from sftp_s3_tui.airflow.connections import (
    ConnectionFields,
    conflict_policy_for,
    connection_fields,
    host_key_line,
    s3_endpoint_from_connection,
    sftp_endpoint_from_connection,
)
from sftp_s3_tui.airflow.transfer import (
    batches,
    destination,
    failure_message,
    summarize,
    task_message,
    transfer_options,
)
from sftp_s3_tui.engine.addresses import S3Location
from sftp_s3_tui.engine.config import ConflictPolicy, HostKeyPolicy, MiB, S3Endpoint
from sftp_s3_tui.engine.errors import (
    ConfigError,
    HostKeyError,
    SftpAuthError,
    SourceNotFound,
    UsageError,
)
from sftp_s3_tui.engine.events import TransferResult, TransferState

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHPbU1bSj0dxTSOKbCSNXXPOFLAnqH3wIxXdB8qCmW9W"


def sftp(extra: dict[str, object] | None = None, **fields: object) -> ConnectionFields:
    base: dict[str, object] = {"conn_id": "partner", "host": "sftp.example", "login": "landing"}
    base.update(fields)
    base["extra"] = extra or {}
    return ConnectionFields(**base)  # type: ignore[typeddict-item]


def test_importing_the_package_does_not_import_airflow() -> None:
    code = "import sys, sftp_s3_tui, sftp_s3_tui.airflow; print('airflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_sftp_connection_with_key_file_and_known_hosts_is_strict() -> None:
    endpoint = sftp_endpoint_from_connection(
        sftp({"key_file": "/secrets/id_ed25519", "known_hosts": "/secrets/known_hosts"}, port=2222)
    )
    assert (endpoint.host, endpoint.port, endpoint.username) == ("sftp.example", 2222, "landing")
    assert endpoint.identity_files == ("/secrets/id_ed25519",)
    assert endpoint.known_hosts == "/secrets/known_hosts"
    assert endpoint.host_key_policy is HostKeyPolicy.STRICT  # unlike SSHHook's default
    assert endpoint.use_agent is True


def test_sftp_connection_with_private_key_text_and_passphrase() -> None:
    endpoint = sftp_endpoint_from_connection(
        sftp(
            {
                "private_key": "-----BEGIN…",
                "private_key_passphrase": "pw",
                "look_for_keys": "false",
            },
            password="login-pw",
        )
    )
    assert endpoint.private_keys == ("-----BEGIN…",)
    assert endpoint.passphrase == "pw"
    assert endpoint.password == "login-pw"
    assert endpoint.use_agent is False
    assert endpoint.port == 22
    assert "BEGIN" not in repr(endpoint) and "login-pw" not in repr(endpoint)


def test_host_key_extra_is_trusted_in_both_airflow_spellings() -> None:
    typed = sftp_endpoint_from_connection(sftp({"host_key": ED25519}))
    assert typed.trusted_host_keys == (ED25519,)
    assert typed.host_key_policy is HostKeyPolicy.STRICT
    assert host_key_line("AAAAB3NzaC1yc2EAAAADAQAB") == "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB"


def test_no_host_key_check_only_accepts_new_keys_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        endpoint = sftp_endpoint_from_connection(
            sftp({"no_host_key_check": True, "allow_host_key_change": "true"})
        )
    assert endpoint.host_key_policy is HostKeyPolicy.ACCEPT_NEW
    assert "trusted on first use" in caplog.text
    assert "a changed host key is refused" in caplog.text


def test_bad_sftp_connections_fail_with_a_message() -> None:
    with pytest.raises(ConfigError, match="has no host"):
        sftp_endpoint_from_connection(sftp(host=None))
    with pytest.raises(ConfigError, match="'no_host_key_check' is 'maybe'"):
        sftp_endpoint_from_connection(sftp({"no_host_key_check": "maybe"}))
    with pytest.raises(ConfigError, match="conn_timeout"):
        sftp_endpoint_from_connection(sftp({"conn_timeout": "soon"}))
    assert sftp_endpoint_from_connection(sftp({"conn_timeout": "5"})).connect_timeout_seconds == 5


def test_aws_connection_for_an_s3_compatible_store() -> None:
    endpoint = s3_endpoint_from_connection(
        ConnectionFields(
            conn_id="minio",
            login="AKIA",
            password="secret",
            extra={
                "endpoint_url": "http://minio:9000",
                "region_name": "eu-west-1",
                "config_kwargs": {"s3": {"addressing_style": "path"}},
                "verify": False,
            },
        )
    )
    assert endpoint == S3Endpoint(
        endpoint_url="http://minio:9000",
        region="eu-west-1",
        access_key_id="AKIA",
        secret_access_key="secret",
        path_style=True,
        verify_tls=False,
    )
    assert "secret" not in repr(endpoint)


def test_aws_connection_extras_and_the_default_chain() -> None:
    endpoint = s3_endpoint_from_connection(
        ConnectionFields(
            extra={
                "aws_access_key_id": "AKIA",
                "aws_secret_access_key": "s",
                "aws_session_token": "t",
                "service_config": {"s3": {"endpoint_url": "https://r2.example"}},
                "profile_name": "landing",
            }
        )
    )
    assert (endpoint.access_key_id, endpoint.session_token) == ("AKIA", "t")
    assert endpoint.endpoint_url == "https://r2.example"
    assert endpoint.profile == "landing"
    assert s3_endpoint_from_connection(None) == S3Endpoint()
    assert s3_endpoint_from_connection(ConnectionFields(extra={})) == S3Endpoint()


def test_role_assumption_and_ca_bundles_are_refused_rather_than_ignored() -> None:
    with pytest.raises(ConfigError, match="AWS_CA_BUNDLE"):
        s3_endpoint_from_connection(ConnectionFields(extra={"verify": "/etc/ca.pem"}))
    with pytest.raises(ConfigError, match="role_arn"):
        s3_endpoint_from_connection(ConnectionFields(conn_id="aws", extra={"role_arn": "arn:x"}))


def test_connection_fields_reads_airflow_connections_duck_typed() -> None:
    conn = SimpleNamespace(
        conn_id="c",
        conn_type="sftp",
        host="h",
        port=2022,
        login="u",
        password=None,
        extra_dejson={"key_file": "/k"},
    )
    assert connection_fields(conn) == {
        "conn_id": "c", "conn_type": "sftp", "host": "h", "port": 2022, "login": "u",
        "password": None, "extra": {"key_file": "/k"},
    }  # fmt: skip
    raw = SimpleNamespace(host="h", extra=json.dumps({"no_host_key_check": "true"}))
    assert connection_fields(raw)["extra"] == {"no_host_key_check": "true"}


def test_replace_maps_to_a_conflict_policy_unless_one_is_given() -> None:
    assert conflict_policy_for(True, None) is ConflictPolicy.OVERWRITE
    assert conflict_policy_for(False, None) is ConflictPolicy.SKIP_EXISTING
    assert conflict_policy_for(True, "if-newer") is ConflictPolicy.IF_NEWER
    with pytest.raises(ConfigError, match="if-different"):
        conflict_policy_for(False, "sometimes")


def test_destination_from_bucket_and_key_or_an_s3_url() -> None:
    assert destination("landing", "partner-a/") == S3Location("landing", "partner-a/")
    assert destination("landing", "/in/x.csv") == S3Location("landing", "in/x.csv")
    assert destination(None, "s3://landing/x.csv") == S3Location("landing", "x.csv")
    with pytest.raises(UsageError, match="No S3 bucket"):
        destination(None, "x.csv")
    with pytest.raises(UsageError, match="one place"):
        destination("landing", "s3://other/x.csv")


def test_transfer_options_take_sizes_as_text_and_refuse_a_tiny_budget() -> None:
    options = transfer_options(
        conflict=ConflictPolicy.OVERWRITE, part_size="16MiB", memory_budget=64 * MiB,
        parts_in_flight=4,
    )  # fmt: skip
    assert (options.part_size, options.memory_budget, options.parts_in_flight) == (
        16 * MiB,
        64 * MiB,
        4,
    )
    with pytest.raises(UsageError, match="smaller than one part"):
        transfer_options(
            conflict=ConflictPolicy.OVERWRITE, part_size="64MiB", memory_budget="32MiB"
        )
    with pytest.raises(UsageError, match="parts_in_flight must be positive"):
        transfer_options(conflict=ConflictPolicy.OVERWRITE, parts_in_flight=0)


def test_batches_by_count_and_by_bytes() -> None:
    files = [("/a", 10), ("/b", 10), ("/c", 100), ("/d", 1), ("/e", 1)]
    assert batches(files, batch_size=2) == [["/a", "/b"], ["/c", "/d"], ["/e"]]
    assert batches(files, batch_bytes=25) == [["/a", "/b"], ["/c"], ["/d", "/e"]]
    assert batches([], batch_size=3) == []
    with pytest.raises(UsageError):
        batches(files, batch_size=0)


def _result(key: str, status: TransferState, message: str = "") -> TransferResult:
    return TransferResult(
        source=f"sftp://h/in/{key}", bucket="b", key=key, bytes=10, seconds=1.0, parts=1,
        sha256="ab" if status is TransferState.DONE else None, status=status, message=message,
    )  # fmt: skip


def test_summary_and_failure_message() -> None:
    results = [
        _result("a", TransferState.DONE),
        _result("b", TransferState.SKIPPED, "exists"),
        _result("c", TransferState.FAILED, "Permission denied reading /in/c"),
    ]
    summary = summarize(results, 2.5)
    assert {k: summary[k] for k in ("files", "copied", "skipped", "failed", "bytes")} == {
        "files": 3, "copied": 1, "skipped": 1, "failed": 1, "bytes": 10,
    }  # fmt: skip
    assert summary["objects"][0]["sha256"] == "ab"
    json.dumps(summary)  # an XCom must serialise
    assert failure_message(results) == (
        "1 of 3 file(s) failed: sftp://h/in/c: Permission denied reading /in/c"
    )
    assert failure_message(results[:2]) is None


def test_task_messages_give_hints_in_airflow_terms() -> None:
    unknown = HostKeyError(
        "The host key of h:22 is unknown (ssh-ed25519 SHA256:x)",
        "verify the fingerprint, then pass --accept-new-host-key",
        host="h",
        port=22,
        fingerprint="ssh-ed25519 SHA256:x",
    )
    assert task_message(unknown).startswith("Host key not trusted: The host key of h:22 is unknown")
    assert "host_key extra" in task_message(unknown) and "--accept" not in task_message(unknown)
    refused = SftpAuthError("sftp://h refused the login for u", "check SFTP_PASSWORD / --identity")
    assert task_message(refused) == (
        "SFTP login refused: sftp://h refused the login for u — "
        "check the connection's login, password, key_file or private_key"
    )
    missing = SourceNotFound("/in/x does not exist on the SFTP server", "check the path")
    assert task_message(missing) == (
        "Source not found: /in/x does not exist on the SFTP server — check the path"
    )
