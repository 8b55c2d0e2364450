"""The chart passes Helm's own lint, for the defaults and for every option; breaking it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.conftest import CHART, Lint, chart_with_values, errors, values_file


def test_the_chart_lints_clean_with_its_default_values(lint: Lint) -> None:
    result = lint(CHART)
    assert errors(result) == [], result
    assert result["TotalChartsLinted"] == 1


@pytest.mark.parametrize("name", ["all-options-values.yaml", "external-stores-values.yaml"])
def test_the_chart_lints_clean_with_a_values_file(lint: Lint, tmp_path: Path, name: str) -> None:
    result = lint(chart_with_values(tmp_path, values_file(name)))
    assert errors(result) == [], result


@pytest.mark.parametrize(
    "broken",
    [
        "  broken: {{ .Values.gateway.nope.deeper }}\n",  # a nil pointer: does not render
        "  - not: [valid yaml\n",  # renders, but not to YAML
    ],
    ids=["does-not-render", "renders-no-yaml"],
)
def test_a_broken_template_fails_lint(lint: Lint, tmp_path: Path, broken: str) -> None:
    chart = chart_with_values(tmp_path, {})
    template = chart / "templates" / "gateway-service.yaml"
    template.write_text(template.read_text() + broken)
    found = errors(lint(chart))
    assert found
    assert all(path.startswith("templates/") for path in found)


@pytest.mark.parametrize(
    "override",
    [
        {"gateway": {"replicas": "three"}},
        {"gateway": {"env": "staging"}},
        {"gateway": {"limits": {"requestsPerMinute": -1}}},
        {"gateway": {"replica": 2}},
        {"redis": {"url": "http://not-redis"}},
        {"gateway": {"adminToken": "under-32-characters"}},
        {"postgresql": {"bundled": False}, "gateway": {"databaseUrl": "postgresql://db/gw"}},
        {"gateway": {"corsAllowOrigins": ["https://app.example.com/"]}},
    ],
    ids=[
        "string-for-integer",
        "unknown-env",
        "negative-limit",
        "misspelt-key",
        "bad-redis-url",
        "short-admin-token",
        "database-url-without-asyncpg",
        "cors-origin-with-a-path",
    ],
)
def test_a_wrong_value_fails_lint_through_the_values_schema(
    lint: Lint, tmp_path: Path, override: dict[str, object]
) -> None:
    assert "values.yaml" in errors(lint(chart_with_values(tmp_path, override)))


def test_enabling_no_model_fails_lint(lint: Lint, tmp_path: Path) -> None:
    override = {"models": {"int8": {"enabled": False}, "fp16": {"enabled": False}}}
    assert "values.yaml" in errors(lint(chart_with_values(tmp_path, override)))


def test_an_external_database_without_a_url_fails_lint(lint: Lint, tmp_path: Path) -> None:
    override = {"postgresql": {"bundled": False}}
    assert "values.yaml" in errors(lint(chart_with_values(tmp_path, override)))
