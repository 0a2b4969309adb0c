"""Embedded Metric Format documents a handler prints, turned into Prometheus summaries:
what a hostile or careless handler's output cannot do to a scrape."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from skylift.observe.emf import MAX_SERIES_PER_FUNCTION, EmbeddedMetrics


def document(metrics: dict[str, Any], dimensions: list[list[str]], **members: Any) -> bytes:
    directive = {
        "Namespace": "Shop",
        "Dimensions": dimensions,
        "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
    }
    body = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [directive]}, **metrics, **members}
    return json.dumps(body).encode()


def samples(emf: EmbeddedMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The scrape as OpenMetrics, parsed by prometheus_client's strict parser."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(emf)
    text = openmetrics(registry).decode()
    generate_latest(registry)  # the classic text format renders too
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_metric_named_like_anothers_sample_is_dropped_and_the_scrape_stays_valid() -> None:
    emf = EmbeddedMetrics()
    emf.read("f", document({"Orders": 1}, [[]]))
    emf.read("f", document({"OrdersCount": 5}, [[]]))  # shop_orders_count: Orders' sample
    emf.read("f", document({"Orders": 2}, [[]]))
    found = samples(emf)
    assert found[("shop_orders_count", frozenset({("function", "f")}))] == 2
    assert found[("shop_orders_sum", frozenset({("function", "f")}))] == 3
    assert not [name for name, _ in found if name.startswith("shop_orders_count_")]


def test_the_order_of_a_dimension_set_does_not_make_another_series() -> None:
    emf = EmbeddedMetrics()
    emf.read("f", document({"Orders": 1}, [["a", "b"]], a="1", b="2"))
    emf.read("f", document({"Orders": 1}, [["b", "a"]], a="1", b="2"))
    labels = frozenset({("function", "f"), ("a", "1"), ("b", "2")})
    assert samples(emf)[("shop_orders_count", labels)] == 2


def test_documents_that_cannot_be_counted_faithfully_are_refused_whole() -> None:
    emf = EmbeddedMetrics()
    # Two dimensions that would be one label; values past a float's range; a value longer
    # than CloudWatch takes; a value that is no number.
    emf.read("f", document({"Orders": 1}, [["OrderType", "order_type"]], OrderType="a",
                           order_type="b"))  # fmt: skip
    emf.read("f", document({"Orders": [1.7e308, 1.7e308]}, [[]]))
    emf.read("f", document({"Orders": 1}, [["color"]], color="x" * 1025))
    emf.read("f", document({"Orders": True}, [[]]))
    assert samples(emf) == {}


def test_one_function_cannot_take_every_series() -> None:
    emf = EmbeddedMetrics()
    for n in range(MAX_SERIES_PER_FUNCTION + 5):
        emf.read("noisy", document({"Orders": 1}, [["id"]], id=str(n)))
    emf.read("quiet", document({"Orders": 1}, [["id"]], id="0"))
    found = samples(emf)
    noisy = [labels for name, labels in found if ("function", "noisy") in labels]
    assert len(noisy) == 2 * MAX_SERIES_PER_FUNCTION  # _count and _sum of each
    assert found[("shop_orders_count", frozenset({("function", "quiet"), ("id", "0")}))] == 1
