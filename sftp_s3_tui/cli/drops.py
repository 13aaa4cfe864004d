"""A watch's drop expectations (``--expect``), told after each poll, for both directions.

The SFTP → S3 watch (:mod:`.run`) and the S3 → SFTP watch (:mod:`.delivery_watch`) count
what landed through their observers; after each poll this checks the deadlines (the late
hook fires once per late drop, through the observers), sets the drop gauges under the
watch's ``direction``, says a late drop on stderr (unless the JSON log has said it) and,
under ``--json``, prints a ``drops`` record."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..engine.events import Direction
from ..metrics.drops import DropGauges
from ..observe.expectations import DropStatus
from ..observe.session import Observers


class WatchDrops:
    """Starts the observers' drop trackers and shows their first state at once (a drop
    due later is shown as expected from the watch's start)."""

    def __init__(
        self,
        observers: Observers,
        gauges: DropGauges,
        direction: Direction,
        *,
        json_records: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.observers, self.gauges, self.direction = observers, gauges, direction
        self.json_records, self.warn = json_records, warn
        observers.start_drops()
        gauges.show(observers.check_drops(), direction)

    def after_poll(self) -> None:
        """Check every drop against the observers' clock and tell what is due."""
        drops = self.observers.check_drops(self._late)
        self.gauges.show(drops, self.direction)
        if self.json_records and drops:
            print(json.dumps({"drops": [d.as_json() for d in drops]}), flush=True)

    def _late(self, drop: DropStatus) -> None:
        if self.observers.json_log is None:  # the JSON log has its drop.late line already
            self.warn(f"drop {drop.line()}")
