"""Monitoring on a cluster that runs the Prometheus Operator and the Prometheus Adapter.

- a `ServiceMonitor`: Prometheus scrapes every pod's `/_skylift/metrics` (open without
  the token: it reveals no state) through the app's Service;
- a `PrometheusRule`: the rules `skylift export prometheus` writes from the app's
  alerting policy (`skylift.toml`), so the cluster's Prometheus pages as skylift would;
- the HPA's second metric: skylift's concurrency per pod, which the Prometheus Adapter
  serves as the Pods metric `skylift_concurrent_executions` (its rule is in
  docs/kubernetes.md, as `ADAPTER_RULE`).
"""

from __future__ import annotations

from typing import Any

from skylift.export.manifests import Manifest, metadata
from skylift.export.model import AppModel
from skylift.export.prometheus import app_policy, rule_groups

METRICS_PATH = "/_skylift/metrics"
SCRAPE_INTERVAL = "15s"
CONCURRENCY_METRIC = "skylift_concurrent_executions"
BUSY_PER_INSTANCE = 0.7  # skylift's own autoscaler's target: 0.7 busy per instance

# The Prometheus Adapter's rule that serves the metric (its `rules:` list, values.yaml's
# `rules.custom` for the prometheus-community chart): the pod's invocations running now.
ADAPTER_RULE: dict[str, Any] = {
    "seriesQuery": f'{CONCURRENCY_METRIC}{{namespace!="",pod!=""}}',
    "resources": {
        "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    },
    "name": {"matches": f"^{CONCURRENCY_METRIC}$", "as": CONCURRENCY_METRIC},
    "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
}


def monitoring(app: AppModel, namespace: str) -> list[tuple[str, Manifest]]:
    return [
        ("servicemonitor.yaml", service_monitor(app, namespace)),
        ("prometheusrule.yaml", prometheus_rule(app, namespace)),
    ]


def service_monitor(app: AppModel, namespace: str) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(app.name, namespace, app.name),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": app.name}},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {
                    "port": "http",
                    "path": METRICS_PATH,
                    "interval": SCRAPE_INTERVAL,
                    "scrapeTimeout": "10s",
                }
            ],
        },
    }


def prometheus_rule(app: AppModel, namespace: str) -> Manifest:
    """The alerting policy's rules (the default policy without a `skylift.toml`), over
    every pod's series, summed by function or queue as one server's would be."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(app.name, namespace, app.name),
        "spec": rule_groups(app_policy(app)),
    }


def instances_per_pod(app: AppModel) -> int:
    """The instances a pod's resource request covers: each function's warm ones, at least one."""
    return sum(max(1, spec.min_instances) for spec in app.specs) or 1


def concurrency_metric(app: AppModel) -> dict[str, Any]:
    """An HPA Pods metric: scale when the pod's running invocations average more than
    0.7 per instance its request covers (skylift's own target, one level up)."""
    target = round(BUSY_PER_INSTANCE * instances_per_pod(app) * 1000)
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": CONCURRENCY_METRIC},
            "target": {"type": "AverageValue", "averageValue": f"{target}m"},
        },
    }
