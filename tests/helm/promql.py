"""Reading the chart's PromQL: the expressions of the dashboards and alerts, and the metric
names, label matchers and grouping labels in them (enough PromQL for our own files)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.helm.conftest import CHART

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
ALERTS = CHART / "rules" / "alerts.yaml"

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan",
}  # fmt: skip
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
VARIABLE = re.compile(r"\$\{?(\w+)")
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s"}


def dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def dashboard_expressions() -> list[str]:
    return [
        target["expr"]
        for path in DASHBOARDS
        for panel in dashboard(path)["panels"]
        for target in panel["targets"]
    ]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def variable_queries() -> list[tuple[str, str]]:
    """(metric, label) of the dashboards' `label_values(metric, label)` variables."""
    queries = [
        variable["query"]["query"]
        for path in DASHBOARDS
        for variable in dashboard(path)["templating"]["list"]
        if variable["type"] == "query"
    ]
    return [
        (match[1], match[2])
        for query in queries
        if (match := re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query))
    ]


EXPRESSIONS = {"dashboards": dashboard_expressions, "alerts": alert_expressions}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\b[A-Z][A-Z0-9_]*\b", "0", text)  # the alerts' threshold placeholders
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", "0", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def label_matchers(expression: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every label matcher in an expression."""
    return [
        (selector[1], matcher[1], matcher[2], matcher[3])
        for selector in SELECTOR.finditer(expression)
        for matcher in MATCHER.finditer(selector[2])
    ]


def grouping_labels(expression: str) -> set[str]:
    return {
        label.strip()
        for group in GROUPING.findall(expression)
        for label in group.split(",")
        if label.strip()
    }
