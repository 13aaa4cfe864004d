"""The Airflow operator and listing helper (this module imports Airflow; 2.9+ and 3.x)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from airflow.exceptions import AirflowException

try:  # Airflow 3: the task SDK
    from airflow.sdk import BaseHook, BaseOperator
except ImportError:  # Airflow 2
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.models import BaseOperator  # type: ignore[no-redef,assignment]

from ..engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint
from ..engine.errors import TransferError
from ..engine.journal import Journal
from ..engine.locations import parse_size
from ..paths import journal_dir
from ..requests import env_value, with_aws_defaults
from .connections import (
    conflict_policy_for,
    connection_fields,
    s3_endpoint_from_connection,
    sftp_endpoint_from_connection,
)
from .transfer import (
    batches,
    destination,
    failure_message,
    list_files,
    run_sync,
    stream_to_s3,
    summarize,
    task_message,
    transfer_options,
)

#: The XCom key of the summary, pushed even when the task fails.
SUMMARY_XCOM_KEY = "transfer_summary"


def sftp_endpoint(conn_id: str) -> SftpEndpoint:
    """The engine's SFTP endpoint for an Airflow SSH/SFTP connection id (no login: $USER,
    as in every front)."""
    endpoint = sftp_endpoint_from_connection(connection_fields(BaseHook.get_connection(conn_id)))
    user = env_value(os.environ, "USER")
    return endpoint if endpoint.username or not user else replace(endpoint, username=user)


def s3_endpoint(conn_id: str | None) -> S3Endpoint:
    """The engine's S3 endpoint for an Airflow AWS connection id (``None``: the AWS chain);
    an unset endpoint URL or region comes from the AWS variables, as in every front."""
    fields = connection_fields(BaseHook.get_connection(conn_id)) if conn_id else None
    return with_aws_defaults(s3_endpoint_from_connection(fields), os.environ)


class StreamingSFTPToS3Operator(BaseOperator):
    """Stream files from SFTP into S3 on the sftp-s3-tui engine: no temp disk, bounded
        memory, every object verified (size, checksum, sha256 metadata).

        Arguments mirror ``SFTPToS3Operator``; ``sftp_path`` may also be a folder (copied
        recursively, rsync-style: ``/in/`` copies its contents, ``/in`` the folder) or a glob
        (``/in/*.csv``), and ``sftp_paths`` takes several. ``s3_key`` is one key, or a prefix
        ending in ``/`` for many files. ``replace=False`` skips keys that already exist (a
        race-free conditional write); ``conflict_policy`` (``overwrite``, ``skip-existing``,
        ``if-newer``, ``if-different``) overrides it. ``sftp_base_path`` makes keys relative to
        that folder, so tasks mapped over a folder's files keep its layout. ``checksum`` picks the
    checksum every part carries (``auto``, ``crc64nvme``, ``crc32c``, ``crc32``, ``sha256``,
    ``md5``, ``none``), as ``copy --checksum`` does.

        Returns a summary (files, bytes, one entry with key, bytes, sha256 and status per file)
        as XCom; fails with the engine's message when any file did not land.
    """

    template_fields: Sequence[str] = (
        "sftp_path",
        "sftp_paths",
        "s3_bucket",
        "s3_key",
        "sftp_base_path",
        "push_gateway",
    )
    ui_color = "#e4f0e8"

    def __init__(
        self,
        *,
        s3_bucket: str | None = None,
        s3_key: str = "",
        sftp_path: str | None = None,
        sftp_paths: Sequence[str] | None = None,
        sftp_conn_id: str = "sftp_default",
        s3_conn_id: str | None = "aws_default",
        replace: bool = False,
        conflict_policy: str | ConflictPolicy | None = None,
        part_size: int | str | None = None,
        memory_budget: int | str | None = None,
        parts_in_flight: int | None = None,
        files_in_flight: int | None = None,
        checksum: str | None = None,
        sftp_base_path: str | None = None,
        fail_on_file_not_exist: bool = True,
        resume: bool = True,
        push_gateway: str | None = None,
        use_temp_file: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if use_temp_file:  # accepted so SFTPToS3Operator tasks can switch over unchanged
            self.log.info("use_temp_file is ignored: this operator always streams")
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.sftp_path = sftp_path
        self.sftp_paths = sftp_paths
        self.sftp_conn_id = sftp_conn_id
        self.s3_conn_id = s3_conn_id
        self.replace = replace
        self.conflict_policy = conflict_policy
        self.part_size = part_size
        self.memory_budget = memory_budget
        self.parts_in_flight = parts_in_flight
        self.files_in_flight = files_in_flight
        self.checksum = checksum
        self.sftp_base_path = sftp_base_path
        self.fail_on_file_not_exist = fail_on_file_not_exist
        self.resume = resume
        self.push_gateway = push_gateway

    def source_paths(self) -> list[str]:
        """``sftp_path`` and ``sftp_paths`` together, in order."""
        paths = [self.sftp_path] if self.sftp_path else []
        if isinstance(self.sftp_paths, str):
            paths.append(self.sftp_paths)
        elif self.sftp_paths:
            paths += list(self.sftp_paths)
        return paths

    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        try:
            sftp = sftp_endpoint(self.sftp_conn_id)
            s3 = s3_endpoint(self.s3_conn_id)
            dest = destination(self.s3_bucket, self.s3_key)
            options = transfer_options(
                conflict=conflict_policy_for(self.replace, self.conflict_policy),
                part_size=self.part_size,
                memory_budget=self.memory_budget,
                parts_in_flight=self.parts_in_flight,
                files_in_flight=self.files_in_flight,
                checksum=self.checksum,
            )
            journal = Journal(journal_dir()) if self.resume else None
            paths = self.source_paths()
            results = run_sync(
                lambda: stream_to_s3(
                    sftp,
                    paths,
                    dest,
                    s3,
                    options,
                    base_path=self.sftp_base_path or None,
                    journal=journal,
                    fail_on_missing=self.fail_on_file_not_exist,
                    push_gateway=self.push_gateway,
                    metric_labels=task_labels(context),
                )
            )
        except TransferError as exc:
            raise AirflowException(task_message(exc)) from None
        summary = summarize(results, time.monotonic() - started)
        message = failure_message(results)
        if message:
            context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
            raise AirflowException(message)
        return summary


def task_labels(context: Any) -> dict[str, str]:
    """Push-gateway grouping labels of one task instance (mapped tasks stay apart)."""
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "map_index": str(getattr(ti, "map_index", -1)),
    }


def list_sftp_files(
    sftp_conn_id: str,
    path: str,
    pattern: str = "*",
    *,
    recursive: bool = True,
    batch_size: int | None = None,
    batch_bytes: int | str | None = None,
) -> list[str] | list[list[str]]:
    """The files under ``path`` whose names match ``pattern``, sorted; grouped into batches
    (at most ``batch_size`` files, about ``batch_bytes`` bytes) when either is given.

    Call it in a ``@task`` (or wrap it: ``task(list_sftp_files)``) and map the operator over
    the result: ``.expand(sftp_path=files)`` or ``.expand(sftp_paths=batches)``.
    """
    try:
        endpoint = sftp_endpoint(sftp_conn_id)
        files = run_sync(lambda: list_files(endpoint, path, pattern, recursive=recursive))
        if batch_size is None and batch_bytes is None:
            return [p for p, _ in files]
        limit = None
        if batch_bytes is not None:
            limit = parse_size(batch_bytes) if isinstance(batch_bytes, str) else int(batch_bytes)
        return batches(files, batch_size, limit)
    except TransferError as exc:
        raise AirflowException(task_message(exc)) from None
