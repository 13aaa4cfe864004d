"""OpenLineage events of a copy or a watch poll: START, then COMPLETE or FAIL with the
files that landed as datasets.

Configured the standard way (``OPENLINEAGE_URL``, ``OPENLINEAGE_CONFIG`` or an
``openlineage.yml`` in the working folder or ``~/.openlineage``, ``OPENLINEAGE__…``
variables); unconfigured, :func:`open_lineage` returns None and the client is never imported
(it costs over a second of start-up). The client's transports (HTTP, file, console) are
blocking: events are sent in order on a :class:`~.dispatch.Dispatcher` thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..redaction import redact
from .dispatch import Dispatcher

if TYPE_CHECKING:
    from ..engine.config import SftpEndpoint
    from ..engine.transfer.delivery_result import DeliveryResult

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/abyssnlp/sftp-streaming-s3"
DEFAULT_NAMESPACE = "sftp-s3-tui"
#: A row's ``direction`` for an S3 → SFTP delivery (its SFTP side under ``target``): its
#: datasets are the reverse of a copy's (copies' rows have no direction).
DELIVERY = "s3-to-sftp"


def delivery_row(
    result: DeliveryResult, endpoint: SftpEndpoint, host_key: str | None
) -> dict[str, Any]:
    """A delivered object as the observers' row (lineage's per-file facet is built from it;
    the datasets reversed: the object in, the file out). Every front's deliveries use it."""
    return {
        "kind": "file",
        "direction": DELIVERY,
        "status": result.status,
        "bucket": result.bucket,
        "key": result.key,
        "size": result.bytes,
        "target": {"host": endpoint.host, "port": endpoint.port, "path": result.remote_path},
        "verified_by": result.verified_by or None,
        "etag": result.etag or None,
        "version_id": result.version_id,
        "host_key": host_key,
        "source_action": "delete" if result.source_deleted else None,
    }


def lineage_configured(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> bool:
    """Whether the OpenLineage client would find a configuration (without importing it)."""
    env = os.environ if env is None else env
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG"):
        return True
    if any(name.startswith("OPENLINEAGE__TRANSPORT") for name in env):
        return True
    home = Path(env.get("HOME") or Path.home())
    candidates = [(cwd or Path.cwd()) / "openlineage.yml", home / ".openlineage/openlineage.yml"]
    return any(path.is_file() for path in candidates)


class Lineage:
    """Sends a run's events for one job (``namespace`` / ``job_name``)."""

    def __init__(
        self,
        job_name: str,
        dispatcher: Dispatcher,
        *,
        namespace: str | None = None,
        job_type: str = "COPY",
        gate: str | None = None,
        on_warning: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.namespace = namespace or env.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
        self.job_name = job_name
        self.job_type = job_type
        self.gate = gate
        self.dispatcher = dispatcher
        self.on_warning = on_warning
        self._client: Any = None
        self._warned = False

    def start(self, run_id: str) -> None:
        now = datetime.now(UTC)
        self.dispatcher.send(lambda: self._emit("START", run_id, now, (), None))

    def complete(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        now, rows = datetime.now(UTC), list(rows)
        self.dispatcher.send(lambda: self._emit("COMPLETE", run_id, now, rows, None))

    def fail(self, run_id: str, rows: Sequence[Mapping[str, Any]], error: str) -> None:
        now, rows = datetime.now(UTC), list(rows)
        self.dispatcher.send(lambda: self._emit("FAIL", run_id, now, rows, redact(error)))

    # -- in the dispatcher's thread --------------------------------------------------------

    def _emit(
        self,
        state: str,
        run_id: str,
        when: datetime,
        rows: Sequence[Mapping[str, Any]],
        error: str | None,
    ) -> None:
        try:
            self._client_or_make().emit(self._event(state, run_id, when, rows, error))
        except Exception as exc:  # the copy never fails for lineage
            message = f"cannot send OpenLineage events: {redact(str(exc))}. The copy goes on."
            if not self._warned:
                self._warned = True
                log.warning("%s", message)
                if self.on_warning is not None:
                    self.on_warning(message)

    def _client_or_make(self) -> Any:
        if self._client is None:
            from openlineage.client import OpenLineageClient

            self._client = OpenLineageClient()
        return self._client

    def _event(
        self,
        state: str,
        run_id: str,
        when: datetime,
        rows: Sequence[Mapping[str, Any]],
        error: str | None,
    ) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job

        from .lineage_facets import datasets

        run_facets: dict[str, Any] = {}
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        job = Job(
            namespace=self.namespace,
            name=self.job_name,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="SFTP_S3_TUI", jobType=self.job_type
                )
            },
        )
        inputs, outputs = datasets(rows, self.gate)
        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=when.isoformat(),
            run=Run(runId=run_id, facets=run_facets),
            job=job,
            producer=PRODUCER,
            inputs=inputs,
            outputs=outputs,
        )
