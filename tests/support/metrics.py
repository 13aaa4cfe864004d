"""Reading metric values back from the push gateway's text exposition."""

from __future__ import annotations


def metric_value(text: str, name: str, *, job: str | None = None) -> float:
    """The sum of a metric's series (only those pushed by ``job``, when given)."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if (line.startswith(name + "{") or line.startswith(name + " "))
        and (job is None or f'job="{job}"' in line)
    ]
    assert values, f"{name} not found"
    return sum(values)
