"""``StreamingS3ToSFTPOperator``: deliver S3 objects to a partner's SFTP server (imports
Airflow; 2.9+ and 3.x)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace as replaced
from typing import Any

from airflow.exceptions import AirflowException

try:  # Airflow 3: the task SDK
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2
    from airflow.models import BaseOperator  # type: ignore[no-redef,assignment]

from ..engine.config import ConflictPolicy
from ..engine.errors import TransferError, UsageError
from ..engine.plan.delivery import DeliveryTarget
from ..engine.units import parse_size
from ..observe.lineage import DELIVERY
from ..observe.session import Observers
from ..requests import ObserveFlags, TransferFlags, observe_options
from ..requests.delivery import task_delivery_request
from .connections import with_link
from .delivery import DeliveryRun, deliver_for_task
from .drops import judge_drops, parse_expect
from .operators import SUMMARY_XCOM_KEY, s3_endpoint, sftp_endpoint, task_labels
from .transfer import run_sync, task_message


class StreamingS3ToSFTPOperator(BaseOperator):
    """Deliver S3 objects to an SFTP server on the sftp-s3-tui engine: streamed (ranged GETs
    straight into pipelined SFTP writes, no temp file on the worker), written to a
    temporary name and renamed into place (a partner never sees half a file), verified
    (the bytes read against the object's CRC64NVME or MD5 ETag, the size by a final fstat),
    the file's mtime set to the object's LastModified.

    Arguments mirror ``S3ToSFTPOperator``: ``s3_bucket`` and ``s3_key`` (or ``s3_key`` as
    ``s3://bucket/key``), ``sftp_path``, ``sftp_conn_id``, ``aws_conn_id``. ``s3_key`` may be
    a prefix ending in ``/``: its objects go under ``sftp_path`` (a folder, ending in ``/``)
    keeping their relative paths; a key that would leave the folder (``..``, a leading
    ``/``, control characters) is refused by name. An exact key into ``sftp_path`` ending in
    ``/`` keeps its file name.

    Ours: ``conflict_policy`` (``skip-existing``, the default: a file already at the final
    name is the partner's; ``overwrite``, ``if-newer``, ``if-different`` replace it
    atomically where the server offers ``posix-rename@openssh.com``), ``replace=True`` for
    ``overwrite``; ``delete_source`` deletes each object once its file is in place;
    ``verify_readback`` reads each file back over SFTP before it is renamed into place and
    compares its SHA-256 with the bytes read from S3 (a second pass over the link);
    ``verify_server_hash`` asks the server for that SHA-256 instead (ProFTPD's check-file);
    ``part_size``, ``parts_in_flight``, ``files_in_flight``, ``memory_budget``;
    ``connections``, ``window``, ``bwlimit``, ``jump`` override the SFTP connection's extras.
    ``hook_url`` / ``notify_on`` send healthchecks-style pings; ``push_gateway`` pushes the
    delivery's metrics (``direction="s3_to_sftp"``, grouped by the task instance) as the
    upload operator's. OpenLineage comes through the
    provider: each delivered object is an input ``s3://bucket`` + key and an output
    ``sftp://host:port`` + path with the ``sftpS3File`` facet. ``expect`` (a line or a list:
    ``3 invoice_*.csv by weekdays 06:00 Europe/Berlin``) checks the drop due at the last
    deadline before the run ends, as the upload operator's does: the objects delivered or
    already there whose key's base name matches are its arrivals; fewer is a late drop —
    the ``late`` hook fires once, the summary's ``drops`` say expected / arrived / missing,
    and the task fails (``expect_fail=False``: warns).

    Returns a summary (counts, bytes, one record per object) as XCom; fails with one line
    naming each object that was not delivered (the summary is pushed as
    ``transfer_summary`` then).
    """

    template_fields: Sequence[str] = (
        "s3_bucket",
        "s3_key",
        "sftp_path",
        "hook_url",
        "push_gateway",
        "expect",
    )
    ui_color = "#e8e4f0"

    def __init__(
        self,
        *,
        s3_bucket: str | None = None,
        s3_key: str = "",
        sftp_path: str = "",
        sftp_conn_id: str = "sftp_default",
        aws_conn_id: str | None = "aws_default",
        replace: bool = False,
        conflict_policy: str | ConflictPolicy | None = None,
        delete_source: bool = False,
        verify_readback: bool = False,
        verify_server_hash: bool = False,
        part_size: int | str | None = None,
        parts_in_flight: int | None = None,
        files_in_flight: int | None = None,
        memory_budget: int | str | None = None,
        connections: int | None = None,
        window: int | str | None = None,
        bwlimit: int | str | None = None,
        jump: str | None = None,
        hook_url: str | None = None,
        notify_on: str | None = None,
        push_gateway: str | None = None,
        expect: str | Sequence[str] | None = None,
        expect_fail: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_bucket, self.s3_key, self.sftp_path = s3_bucket, s3_key, sftp_path
        self.sftp_conn_id, self.aws_conn_id = sftp_conn_id, aws_conn_id
        self.replace, self.conflict_policy = replace, conflict_policy
        self.delete_source, self.verify_readback = delete_source, verify_readback
        self.verify_server_hash = verify_server_hash
        self.part_size, self.parts_in_flight = part_size, parts_in_flight
        self.files_in_flight, self.memory_budget = files_in_flight, memory_budget
        self.connections, self.window, self.bwlimit, self.jump = connections, window, bwlimit, jump
        self.hook_url, self.notify_on = hook_url, notify_on
        self.push_gateway = push_gateway
        self.expect, self.expect_fail = expect, expect_fail
        self._rows: list[dict[str, Any]] = []  # this run's lineage rows

    def transfer_flags(self) -> TransferFlags:
        """The tunables as the request layer's flags (checked there)."""
        conflict = self.conflict_policy or ("overwrite" if self.replace else None)
        return TransferFlags(
            part_size=_size(self.part_size, "part_size"),
            parts_in_flight=None if self.parts_in_flight is None else int(self.parts_in_flight),
            files_in_flight=None if self.files_in_flight is None else int(self.files_in_flight),
            memory_budget=_size(self.memory_budget, "memory_budget"),
            conflict=ConflictPolicy(conflict).value if conflict else None,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            if not self.sftp_path:
                raise UsageError("No SFTP path", "set sftp_path: a file, or a folder ending in /")
            try:
                flags = self.transfer_flags()
            except ValueError as exc:  # an unknown conflict policy
                choices = ", ".join(p.value for p in ConflictPolicy)
                raise UsageError(f"conflict_policy: {exc}", choices) from None
            sftp = with_link(
                sftp_endpoint(self.sftp_conn_id),
                connections=self.connections,
                window=self.window,
                bwlimit=self.bwlimit,
                jump=self.jump,
            )
            target = DeliveryTarget(sftp, self.sftp_path, self.sftp_path.endswith("/"))
            request = task_delivery_request(
                self.s3_bucket,
                self.s3_key,
                target,
                s3_endpoint(self.aws_conn_id),
                flags,
                delete_source=self.delete_source,
                verify_readback=self.verify_readback,
                verify_server_hash=self.verify_server_hash,
                observe=observe_options(
                    ObserveFlags(hook_url=self.hook_url, notify_on=self.notify_on), os.environ
                ),
            )
            request = replaced(
                request,
                observe=replaced(request.observe, expectations=parse_expect(self.expect)),
            )
            self._rows = []
            summary, message = run_sync(lambda: self._deliver(request, context))
        except TransferError as exc:
            raise AirflowException(task_message(exc)) from None
        if message:
            context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
            raise AirflowException(message)
        return summary

    async def _deliver(self, request: Any, context: Any) -> tuple[dict[str, Any], str | None]:
        """The delivery with its hooks (lineage goes through the provider, not our client)."""
        observers = Observers(
            request.observe,
            job_name=self.task_id,
            job_type="DELIVERY",
            lineage=False,
            on_warning=lambda text: self.log.warning("%s", text),
        )
        about = {
            "dag_id": context["ti"].dag_id,
            "task_id": self.task_id,
            "direction": DELIVERY,
            "sources": [str(request.source)],
            "dest": request.target.display,
        }
        observed = observers.begin(about, keep_rows=True)
        run = DeliveryRun(request, on_row=observed.row)
        try:
            try:
                await deliver_for_task(
                    run, push_gateway=self.push_gateway, metric_labels=task_labels(context)
                )
            except TransferError as exc:
                observers.end(observed, about, ok=False, error=str(exc))
                raise
            finally:
                self._rows = observed.rows
            if not run.results:
                error = f"No object under {request.source}"
                if observers.drops:  # nothing came: a drop due now is late (its hook fires)
                    error = judge_drops(observers, [], {}, error, fail=True, log=self.log) or ""
                observers.end(observed, about, ok=False, error=error)
                raise UsageError(error, "check s3_bucket and s3_key")
            summary = run.summary()
            message = run.failure_message()
            if observers.drops:
                landed = [r.key for r in run.results if r.status in ("done", "skipped")]
                message = judge_drops(
                    observers, landed, summary, message, fail=self.expect_fail, log=self.log
                )
            counts = {k: v for k, v in summary.items() if not isinstance(v, list)}
            observers.end(observed, {**about, **counts}, ok=not message, error=message)
            self.log.info(
                "%d delivered, %d skipped, %d failed",
                summary["delivered"],
                summary["skipped"],
                summary["failed"],
            )
            return summary, message
        finally:
            await observers.close()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The provider's OperatorLineage: an ``s3://`` input and an ``sftp://`` output per
        delivered object, with the ``sftpS3File`` facet."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from ..observe.lineage_facets import datasets

        inputs, outputs = datasets(self._rows)
        return OperatorLineage(inputs=inputs, outputs=outputs)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What was delivered before the failure."""
        return self.get_openlineage_facets_on_complete(task_instance)


def _size(value: int | str | None, name: str) -> int | None:
    """Bytes from an argument given as a number or text like ``8MiB``; positive."""
    if value is None or value == "":
        return None
    size = parse_size(value) if isinstance(value, str) else int(value)
    if size <= 0:
        raise UsageError(f"{name} must be positive, not {value!r}", "e.g. 8MiB")
    return size
