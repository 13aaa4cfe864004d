"""The Airflow operator and listing helper (this module imports Airflow; 2.9+ and 3.x)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from airflow.exceptions import AirflowException

try:  # Airflow 3: the task SDK
    from airflow.sdk import Asset, AssetAlias, BaseHook, BaseOperator
except ImportError:  # Airflow 2 (2.10: datasets are what Airflow 3 calls assets)
    from airflow.datasets import Dataset as Asset  # type: ignore[no-redef,assignment]
    from airflow.datasets import DatasetAlias as AssetAlias  # type: ignore[no-redef,assignment]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.models import BaseOperator  # type: ignore[no-redef,assignment]

from ..engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint
from ..engine.errors import TransferError
from ..engine.resume.journal import Journal
from ..engine.units import parse_size
from ..observe.session import Observers
from ..paths import journal_dir
from ..requests import (
    ObserveFlags,
    RunFlags,
    env_value,
    object_options,
    observe_options,
    run_options,
    with_aws_defaults,
)
from .connections import (
    conflict_policy_for,
    connection_fields,
    s3_endpoint_from_connection,
    sftp_endpoint_from_connection,
    with_link,
)
from .drops import judge_drops, parse_expect
from .transfer import (
    SUCCEEDED,
    batches,
    destination,
    failure_message,
    list_files,
    nightly_to_s3,
    run_sync,
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
    ``md5``, ``none``), as ``copy --checksum`` does. ``resume_in_s3`` keeps each upload's resume
    state beside its object in S3, so a retry that lands on another worker continues the upload.
    ``connections``, ``window``, ``bwlimit`` (``"20M"`` = 20 MB/s), ``jump``
    (``[user@]host[:port]``) and ``follow_symlinks`` override the SFTP connection's extras of
    the same names, as ``copy --connections …`` does.

    The nightly run, as ``copy`` has it: ``include`` / ``exclude`` (globs, rclone rules;
    excludes are tried first), ``min_size`` / ``max_size``, ``newer_than`` / ``older_than``
    (an age like ``24h`` or a date); the readiness gate ``min_age``, ``stable`` (ages like
    ``5m``) and ``done_file`` (a suffix: ``x.csv`` waits for ``x.csv.done``); after each
    verified file ``delete_source`` or ``move_to`` (a folder on the SFTP server), with a
    ``manifest`` (a worker path or ``s3://bucket/key``) row written first. Object options:
    ``storage_class``, ``sse`` (``AES256`` / ``aws:kms``), ``sse_kms_key_id``, ``tags`` and
    ``metadata`` (dicts), ``content_type`` (default: guessed from the name).

    Telling the platform: ``asset_alias`` (a name) makes each landed object an Asset event
    ``s3://bucket/key`` through that AssetAlias (keys are known only at run time), so a DAG
    scheduled on the alias runs once a partner's file landed and was verified; the event's
    extra carries the bucket and key, size, sha256, ETag and the source. OpenLineage comes
    through the provider: :meth:`get_openlineage_facets_on_complete` gives each file's
    ``sftp://host:port`` input and ``s3://bucket`` output with the ``sftpS3File`` facet.
    ``hook_url`` / ``notify_on`` send healthchecks-style pings as ``copy --hook-url`` does.
    ``expect`` (a line or a list: ``3 invoice_*.csv by weekdays 06:00 Europe/Berlin``)
    checks the drop due at the last deadline before the run ends (schedule the task after
    the deadline): the run's matching files, copied or already there, are its arrivals;
    fewer is a late drop — the ``late`` hook fires once, the summary's ``drops`` say
    expected / arrived / missing, and the task fails (``expect_fail=False``: warns).

    Returns a summary (files, bytes, one entry with key, bytes, sha256 and status per file,
    the waiting files, what happened to sources) as XCom; fails with the engine's message
    when any file did not land (waiting files do not fail it).
    """

    template_fields: Sequence[str] = (
        "sftp_path",
        "sftp_paths",
        "s3_bucket",
        "s3_key",
        "sftp_base_path",
        "push_gateway",
        "move_to",
        "manifest",
        "newer_than",
        "older_than",
        "tags",
        "metadata",
        "hook_url",
        "expect",
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
        resume_in_s3: bool = False,
        sftp_base_path: str | None = None,
        fail_on_file_not_exist: bool = True,
        resume: bool = True,
        push_gateway: str | None = None,
        connections: int | None = None,
        window: int | str | None = None,
        bwlimit: int | str | None = None,
        jump: str | None = None,
        follow_symlinks: bool | None = None,
        use_temp_file: bool | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        min_size: int | str | None = None,
        max_size: int | str | None = None,
        newer_than: str | None = None,
        older_than: str | None = None,
        min_age: str | None = None,
        stable: str | None = None,
        done_file: str | None = None,
        delete_source: bool = False,
        move_to: str | None = None,
        manifest: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        asset_alias: str | None = None,
        hook_url: str | None = None,
        notify_on: str | None = None,
        expect: str | Sequence[str] | None = None,
        expect_fail: bool = True,
        **kwargs: Any,
    ) -> None:
        if asset_alias:  # declared as an outlet, so Airflow links the events to the alias
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(asset_alias)]
        super().__init__(**kwargs)
        self.asset_alias = asset_alias
        self.hook_url, self.notify_on = hook_url, notify_on
        self.expect, self.expect_fail = expect, expect_fail
        self._rows: list[dict[str, Any]] = []  # this run's manifest rows (lineage, assets)
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
        self.resume_in_s3 = resume_in_s3
        self.sftp_base_path = sftp_base_path
        self.fail_on_file_not_exist = fail_on_file_not_exist
        self.resume = resume
        self.push_gateway = push_gateway
        self.connections = connections
        self.window = window
        self.bwlimit = bwlimit
        self.jump = jump
        self.follow_symlinks = follow_symlinks
        self.include, self.exclude = list(include), list(exclude)
        self.min_size, self.max_size = min_size, max_size
        self.newer_than, self.older_than = newer_than, older_than
        self.min_age, self.stable, self.done_file = min_age, stable, done_file
        self.delete_source, self.move_to, self.manifest = delete_source, move_to, manifest
        self.storage_class, self.sse, self.sse_kms_key_id = storage_class, sse, sse_kms_key_id
        self.tags, self.metadata = dict(tags or {}), dict(metadata or {})
        self.content_type = content_type

    def run_flags(self) -> RunFlags:
        """The nightly-run arguments as the request layer's flags (checked there)."""
        return RunFlags(
            rules=tuple([(False, p) for p in self.exclude] + [(True, p) for p in self.include]),
            min_size=_size_or_none(self.min_size),
            max_size=_size_or_none(self.max_size),
            newer_than=self.newer_than or None,
            older_than=self.older_than or None,
            min_age=self.min_age or None,
            stable=self.stable or None,
            done_file=self.done_file or None,
            delete_source=self.delete_source,
            move_to=self.move_to or None,
            manifest=self.manifest or None,
            storage_class=self.storage_class,
            sse=self.sse,
            sse_kms_key_id=self.sse_kms_key_id,
            tags=tuple(f"{k}={v}" for k, v in self.tags.items()),
            content_type=self.content_type,
            metadata=tuple(f"{k}={v}" for k, v in self.metadata.items()),
        )

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
            sftp = with_link(
                sftp_endpoint(self.sftp_conn_id),
                connections=self.connections,
                window=self.window,
                bwlimit=self.bwlimit,
                jump=self.jump,
                follow_symlinks=self.follow_symlinks,
            )
            s3 = s3_endpoint(self.s3_conn_id)
            dest = destination(self.s3_bucket, self.s3_key)
            options = transfer_options(
                conflict=conflict_policy_for(self.replace, self.conflict_policy),
                part_size=self.part_size,
                memory_budget=self.memory_budget,
                parts_in_flight=self.parts_in_flight,
                files_in_flight=self.files_in_flight,
                checksum=self.checksum,
                resume_in_s3=self.resume_in_s3,
            )
            flags = self.run_flags()
            options = replace(options, object_options=object_options(flags))
            paths = self.source_paths()
            run = run_options(flags, paths)  # refuses a move_to inside the paths
            journal = Journal(journal_dir()) if self.resume else None
            observe = observe_options(
                ObserveFlags(hook_url=self.hook_url, notify_on=self.notify_on), os.environ
            )
            observe = replace(observe, expectations=parse_expect(self.expect))
            self._gate = run.gate
            self._rows = []

            async def observed() -> tuple[dict[str, Any], str | None]:
                # Lineage goes through the provider (OperatorLineage), not our own client.
                observers = Observers(
                    observe,
                    job_name=self.task_id,
                    lineage=False,
                    on_warning=lambda text: self.log.warning("%s", text),
                )
                about = {"dag_id": context["ti"].dag_id, "task_id": self.task_id}
                observed_run = observers.begin(about, keep_rows=True)
                try:
                    try:
                        report = await nightly_to_s3(
                            sftp,
                            paths,
                            dest,
                            s3,
                            options,
                            run,
                            base_path=self.sftp_base_path or None,
                            journal=journal,
                            fail_on_missing=self.fail_on_file_not_exist,
                            push_gateway=self.push_gateway,
                            metric_labels=task_labels(context),
                            observer=observed_run,
                        )
                    except TransferError as exc:
                        observers.end(observed_run, about, ok=False, error=str(exc))
                        raise
                    finally:
                        self._rows = observed_run.rows
                    summary = summarize(report.results, time.monotonic() - started, report)
                    message = failure_message(report.results)
                    if observers.drops:
                        message = self._check_drops(observers, report.results, summary, message)
                    counts = {k: v for k, v in summary.items() if not isinstance(v, list | dict)}
                    observers.end(observed_run, {**about, **counts}, ok=not message, error=message)
                    return summary, message
                finally:
                    await observers.close()

            summary, message = run_sync(observed)
        except TransferError as exc:
            raise AirflowException(task_message(exc)) from None
        self._emit_assets(context)
        if message:
            context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
            raise AirflowException(message)
        return summary

    def _check_drops(
        self,
        observers: Observers,
        results: Sequence[Any],
        summary: dict[str, Any],
        message: str | None,
    ) -> str | None:
        """The ``expect`` drops of this run (see :mod:`.drops`): their statuses in the
        summary, the late hook once per late drop, and the task's failure message when
        ``expect_fail`` (else a warning)."""
        landed = [r.source for r in results if r.status in SUCCEEDED]
        return judge_drops(observers, landed, summary, message, fail=self.expect_fail, log=self.log)

    def _emit_assets(self, context: Any) -> None:
        """One Asset event per landed object, through the alias (names known only now)."""
        if not self.asset_alias:
            return
        events = context["outlet_events"][AssetAlias(self.asset_alias)]
        for row in self._rows:
            if row.get("status") != "done":
                continue
            source = row.get("source") or {}
            events.add(
                Asset(f"s3://{row['bucket']}/{row['key']}"),
                extra={
                    "bucket": row["bucket"],
                    "key": row["key"],
                    "size": source.get("size"),
                    "sha256": row.get("sha256"),
                    "etag": row.get("etag"),
                    "version_id": row.get("version_id"),
                    "verified_by": row.get("verified_by"),
                    "source": f"sftp://{source.get('host')}:{source.get('port')}"
                    f"{source.get('path')}",
                    "run_id": row.get("run_id"),
                },
            )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The provider's OperatorLineage: an input and an output dataset per landed file."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from ..observe.lineage_facets import datasets

        gate = getattr(self, "_gate", None)
        inputs, outputs = datasets(self._rows, _describe_gate(gate))
        return OperatorLineage(inputs=inputs, outputs=outputs)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What did land before the failure."""
        return self.get_openlineage_facets_on_complete(task_instance)


def _describe_gate(gate: Any) -> str | None:
    if gate is None or not gate.active:
        return None
    return str(gate.describe)


def _size_or_none(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    return parse_size(value) if isinstance(value, str) else int(value)


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
