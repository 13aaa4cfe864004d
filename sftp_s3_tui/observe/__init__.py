"""What the platform around a run learns from it: OpenLineage events, healthchecks-style
hooks, JSON log lines and expectations for a drop ("3 invoice files by 06:00").

Every part is optional and cheap when unused: nothing here imports OpenLineage unless it is
configured. The engine never imports this package; the fronts (CLI, watch, Airflow) do.
"""

from .options import NOTIFY_CHOICES, ObserveOptions

__all__ = ["NOTIFY_CHOICES", "ObserveOptions"]
