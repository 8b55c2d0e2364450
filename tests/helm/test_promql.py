"""The PromQL reading the other tests rely on."""

from __future__ import annotations

from tests.helm.promql import grouping_labels, label_matchers, metric_names


def test_the_name_extraction_finds_metrics_and_skips_functions_and_labels() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le, model) (rate(a_seconds_bucket{model=~"$m"}'
        "[$__rate_interval]))) / clamp_min(sum(b_total), 1) > THRESHOLD or absent(c)"
    )
    assert metric_names(expression) == {"a_seconds_bucket", "b_total", "c"}


def test_the_matcher_and_grouping_extraction_finds_each_metrics_labels() -> None:
    expression = 'sum by (le, kind) (rate(a{x="1", y=~"p|q"}[5m])) / sum without (z) (b{w!="2"})'
    assert label_matchers(expression) == [
        ("a", "x", "=", "1"),
        ("a", "y", "=~", "p|q"),
        ("b", "w", "!=", "2"),
    ]
    assert grouping_labels(expression) == {"le", "kind", "z"}
