"""Reading metric values back from the push gateway's text exposition."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families


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


def series(
    text: str, name: str, labels: Mapping[str, str] | None = None
) -> list[tuple[dict[str, str], float]]:
    """Each sample named ``name`` (with ``_total``, ``_count``…) whose labels include
    ``labels``: its labels and value."""
    wanted = dict(labels or {})
    return [
        (dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and wanted.items() <= sample.labels.items()
    ]


def labelled_value(text: str, name: str, **labels: str) -> float:
    """The sum of the series of ``name`` that carry ``labels`` (at least one must)."""
    found = series(text, name, labels)
    assert found, f"no {name} with {labels}"
    return sum(value for _, value in found)
