"""The dashboards are valid Grafana dashboard JSON, and they and the alerts cover what
operators watch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helm.conftest import CHART
from tests.helm.promql import (
    DASHBOARDS,
    GRAFANA_VARIABLES,
    VARIABLE,
    alert_expressions,
    dashboard,
    grouping_labels,
    metric_names,
)

# Grafana JSON


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_a_dashboard_is_grafana_json_with_unique_panel_ids(path: Path) -> None:
    board = dashboard(path)
    ids = [panel["id"] for panel in board["panels"]]
    assert board["schemaVersion"] >= 36
    assert board["uid"]
    assert board["title"]
    assert all(isinstance(panel_id, int) for panel_id in ids)
    assert len(ids) == len(set(ids))
    assert all({"type", "title", "gridPos", "targets"} <= set(panel) for panel in board["panels"])
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in board["panels"])


def test_the_dashboards_have_distinct_uids() -> None:
    uids = [dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_a_dashboard_queries_through_its_datasource_variable(path: Path) -> None:
    board = dashboard(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_a_dashboard_uses_only_variables_it_defines(path: Path) -> None:
    board = dashboard(path)
    defined = {v["name"] for v in board["templating"]["list"]} | GRAFANA_VARIABLES
    used = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in VARIABLE.findall(target["expr"])
    }
    assert used <= defined


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_a_legend_names_only_labels_its_query_keeps(path: Path) -> None:
    for panel in dashboard(path)["panels"]:
        for target in panel["targets"]:
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            assert legend <= grouping_labels(target["expr"]), (panel["title"], legend)


# What the dashboards and alerts are for


def used_names(path: Path) -> set[str]:
    board = dashboard(path)
    return set().union(*(metric_names(t["expr"]) for p in board["panels"] for t in p["targets"]))


def test_the_gateway_dashboard_covers_what_operators_watch() -> None:
    assert {
        "gateway_requests_total",
        "gateway_time_to_first_token_seconds_bucket",
        "gateway_inter_token_latency_seconds_bucket",
        "gateway_completion_tokens_total",
        "gateway_active_streams",
        "gateway_rate_limit_rejections_total",
        "gateway_backend_errors_total",
        "gateway_usage_queue_depth",
    } <= used_names(CHART / "dashboards" / "gateway.json")


def test_the_triton_dashboard_covers_queueing_compute_in_flight_requests_and_kv_cache() -> None:
    assert {
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_pending_request_count",
        "nv_trt_llm_request_metrics",
        "nv_trt_llm_kv_cache_block_metrics",
    } <= used_names(CHART / "dashboards" / "triton.json")


def test_the_alerts_cover_errors_first_token_latency_backend_down_and_usage_backlog() -> None:
    by_metric = [metric_names(expression) for expression in alert_expressions()]
    for needed in (
        "gateway_requests_total",
        "gateway_time_to_first_token_seconds_bucket",
        "nv_inference_request_success",
        "gateway_usage_queue_depth",
    ):
        assert any(needed in names for names in by_metric), needed
