"""The Grafana dashboard and Prometheus config only use metrics the app exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.metrics import SnapshotMetrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "sftp-s3-streaming.json"
METRIC_NAME = re.compile(r"\bsftp_s3_[A-Za-z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # panels inside collapsed rows


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield (
                f"variable {variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


def exported_metric(name: str, exported: dict[str, str]) -> str | None:
    """The exported metric ``name`` refers to, or None: ``x_bucket`` only of a histogram ``x``."""
    if name in exported and exported[name] != "histogram":
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and exported.get(base) == "histogram":
            return base
    return None


def test_metric_name_resolution_is_strict():
    exported = {
        "sftp_s3_a_total": "counter",
        "sftp_s3_h_seconds": "histogram",
        "sftp_s3_g": "gauge",
    }
    assert exported_metric("sftp_s3_h_seconds_bucket", exported) == "sftp_s3_h_seconds"
    assert exported_metric("sftp_s3_h_seconds_sum", exported) == "sftp_s3_h_seconds"
    assert exported_metric("sftp_s3_h_seconds", exported) is None  # a histogram has no bare series
    assert exported_metric("sftp_s3_a_total_count", exported) is None
    assert exported_metric("sftp_s3_a", exported) is None  # a counter is queried with _total
    assert exported_metric("sftp_s3_g", exported) == "sftp_s3_g"


def test_every_dashboard_expression_uses_only_exported_metrics():
    exported = SnapshotMetrics().metric_names()
    used: set[str] = set()
    unknown: list[str] = []
    for where, expr in expressions(load_dashboard()):
        names = METRIC_NAME.findall(expr)
        assert names, f"{where}: {expr!r} names no sftp_s3_ metric"
        for name in names:
            metric = exported_metric(name, exported)
            if metric is None:
                unknown.append(f"{where}: {name}")
            else:
                used.add(metric)
    assert not unknown, "unknown metrics in the dashboard:\n" + "\n".join(unknown)
    # The dashboard shows what the issue promised.
    for required in (
        "sftp_s3_throughput_bytes_per_second",
        "sftp_s3_bytes_transferred_total",
        "sftp_s3_process_resident_memory_bytes",
        "sftp_s3_process_disk_write_bytes_total",
        "sftp_s3_parts_in_flight",
        "sftp_s3_parts_retried_total",
        "sftp_s3_sftp_read_seconds",
        "sftp_s3_s3_upload_seconds",
        "sftp_s3_files_total",
        "sftp_s3_buffer_pool_bytes_in_use",
        "sftp_s3_buffer_pool_budget_bytes",
        "sftp_s3_sftp_rtt_seconds",
        "sftp_s3_sftp_connections",
        "sftp_s3_sftp_connections_granted",  # what a server grants (issue 26)
        "sftp_s3_sftp_connection_limit",
        "sftp_s3_sftp_rename_overwrites",
        "sftp_s3_sftp_read_ceiling_bytes_per_second",
        "sftp_s3_s3_read_seconds",  # a delivery's parts (S3 → SFTP)
        "sftp_s3_sftp_write_seconds",
    ):
        assert required in used, f"the dashboard does not show {required}"


def test_latency_panels_take_quantiles_of_bucket_rates():
    for _where, expr in expressions(load_dashboard()):
        if "histogram_quantile" in expr:
            assert re.search(r"rate\(sftp_s3_\w+_seconds_bucket\b", expr), expr
            assert "by (le)" in expr, expr


def test_dashboard_uses_the_datasource_variable_everywhere():
    dashboard = load_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    units = {
        panel["title"]: panel["fieldConfig"]["defaults"]["unit"]
        for panel in all_panels(dashboard["panels"])
        if panel["type"] != "row"
    }
    assert units["Throughput"] == "Bps"
    assert units["Resident memory (RSS)"] == "bytes"
    assert units["Disk writes and reads"] == "Bps"  # rate() of the _total counters
    assert units["Part latency: SFTP read vs S3 upload"] == "s"
    assert units["Delivery part latency: S3 read vs SFTP write"] == "s"
    assert units["SFTP read ceiling vs throughput"] == "Bps"
    assert units["SFTP round trip"] == "s"


def test_prometheus_scrapes_the_push_gateway_keeping_pushed_labels():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "pushgateway"]
    assert job["honor_labels"] is True
    assert job["static_configs"][0]["targets"] == ["localhost:9091"]

    provisioning = MONITORING / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    assert providers["providers"][0]["type"] == "file"


def test_the_now_stats_count_only_runs_that_are_still_sampling():
    """A push gateway keeps every run's last push: the Throughput and RSS stats must not add
    up finished or killed runs (an idle system once showed 100+ MB/s)."""
    live = "(time() - sftp_s3_last_sample_timestamp_seconds"
    stats = {
        panel["title"]: [t["expr"] for t in panel["targets"]]
        for panel in all_panels(load_dashboard()["panels"])
        if panel["type"] == "stat"
    }
    for title in ("Throughput", "Resident memory"):
        [expr] = stats[title]
        assert live in expr and "< 60)" in expr, expr


def test_cumulative_numbers_are_counters_in_base_units():
    exported = SnapshotMetrics().metric_names()
    assert exported["sftp_s3_process_disk_write_bytes_total"] == "counter"
    assert exported["sftp_s3_process_disk_read_bytes_total"] == "counter"
    assert not [name for name in exported if "percent" in name]
    for name, kind in exported.items():
        assert (kind == "counter") == name.endswith("_total"), name


def test_the_monitoring_readme_lists_every_exported_metric_and_one_metrics_port():
    readme = (MONITORING / "README.md").read_text(encoding="utf-8")
    table = {
        name
        for line in readme.splitlines()
        if line.startswith("| `sftp_s3_")
        for name in METRIC_NAME.findall(line.split("|")[1])
    }
    missing = [name for name in SnapshotMetrics().metric_names() if name not in table]
    assert not missing, f"monitoring/README.md's table lacks {missing}"
    ports = set(
        re.findall(r"localhost:(9\d\d\d)", (MONITORING / "prometheus/prometheus.yml").read_text())
    )
    ports |= set(re.findall(r"--metrics-port (\d+)", readme))
    top = (MONITORING.parent / "README.md").read_text(encoding="utf-8")
    ports |= set(re.findall(r"--metrics-port (\d+)", top))
    assert ports == {"9091", "9300"}, ports  # the gateway, and the one /metrics port


def test_the_direction_variable_filters_every_panel_of_a_directed_metric():
    """Issue 28: uploads and deliveries are told apart by ``direction``; every expression on
    a metric that carries the label filters by the ``$direction`` drop-down (or names one
    direction), and the throughput and files panels draw one line per direction."""
    dashboard = load_dashboard()
    exported = SnapshotMetrics()
    directed = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in exported.registry.collect()
        if any("direction" in sample.labels for sample in family.samples)
    }
    assert directed == {
        "sftp_s3_bytes_transferred_total",
        "sftp_s3_parts_completed_total",
        "sftp_s3_files_total",
        "sftp_s3_throughput_bytes_per_second",
    }
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    direction = variables["direction"]
    assert direction["type"] == "query" and direction["includeAll"] and direction["multi"]
    assert direction["query"]["query"] == "label_values(sftp_s3_bytes_transferred_total, direction)"
    assert direction["allValue"] == ".*"  # also matches series pushed before the label
    selector = re.compile(r"\b(sftp_s3_\w+)\{([^}]*)\}")
    for where, expr in expressions(dashboard):
        for name, labels in selector.findall(expr):
            if name in directed:
                assert 'direction=~"$direction"' in labels or "direction!=" in labels, (
                    f"{where}: {name} is not filtered by direction"
                )
    split = {
        panel["title"]: [t["expr"] for t in panel["targets"]]
        for panel in all_panels(dashboard["panels"])
        if panel["type"] in ("timeseries", "bargauge")
    }
    for title in ("Throughput", "Bytes transferred", "Parts completed", "Files by outcome"):
        assert all(re.search(r"sum by \([^)]*\bdirection\b", e) for e in split[title]), title
