"""`skylift export kubernetes`: Prometheus Operator monitoring, the HPA's concurrency
metric through the Prometheus Adapter, and `--state redis://` with an in-cluster Redis."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from export_apps import API, ROOT, SHOP, skylift, write_app
from test_export_kubernetes import crd_errors, export, kubernetes_validate

from skylift.export.kubernetes_monitoring import ADAPTER_RULE

JOBS = """
from skylift import App

app = App("jobs")

@app.queue("jobs")
def work(event, context):
    return None
"""

POLICY = """
[alerts]
interval = 30
window = 7200
"""


def test_prometheus_scrapes_the_pods_and_gets_the_apps_alerting_rules(tmp_path: Path) -> None:
    app = write_app(tmp_path / "api", API)
    (app / "skylift.toml").write_text(POLICY)
    manifests = export(app, tmp_path / "k8s", "-n", "web")
    monitor = manifests["servicemonitor.yaml"]
    assert crd_errors(monitor) == []
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= manifests["service.yaml"]["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    service_port = manifests["service.yaml"]["spec"]["ports"][0]["name"]
    assert (endpoint["port"], endpoint["path"]) == (service_port, "/_skylift/metrics")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["web"]}

    rule = manifests["prometheusrule.yaml"]
    assert crd_errors(rule) == []
    done = skylift("export", "prometheus", str(app), "--out", str(tmp_path / "prom"))
    assert done.returncode == 0, done.stderr
    exported = yaml.safe_load((tmp_path / "prom" / "rules.yml").read_text())
    assert rule["spec"] == exported  # the same rules, from the same skylift.toml
    assert {g["interval"] for g in rule["spec"]["groups"]} == {"30s"}
    alerts = {r.get("alert") for group in exported["groups"] for r in group["rules"]}
    assert "SkyliftErrorRatePage" in alerts


def test_the_hpa_also_scales_on_concurrency_through_the_prometheus_adapter(
    tmp_path: Path,
) -> None:
    manifests = export(write_app(tmp_path / "api", API), tmp_path / "k8s")
    metrics = manifests["horizontalpodautoscaler.yaml"]["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Resource", "Pods"]
    # hello keeps 2 instances warm, fallback 1: 0.7 busy per instance over 3 instances.
    assert metrics[1]["pods"] == {
        "metric": {"name": "skylift_concurrent_executions"},
        "target": {"type": "AverageValue", "averageValue": "2100m"},
    }
    checked = kubernetes_validate(tmp_path / "k8s" / "horizontalpodautoscaler.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The adapter rule docs/kubernetes.md gives serves exactly that metric, per pod.
    text = (ROOT / "docs" / "kubernetes.md").read_text()
    block = re.search(r"```yaml\n(rules:\n.*?)```", text, re.S)
    assert block is not None, "docs/kubernetes.md shows the adapter's rules"
    assert yaml.safe_load(block.group(1))["rules"] == [ADAPTER_RULE]
    assert ADAPTER_RULE["name"]["as"] == metrics[1]["pods"]["metric"]["name"]


def test_no_monitoring_leaves_out_what_needs_the_operator_and_the_adapter(tmp_path: Path) -> None:
    manifests = export(write_app(tmp_path / "api", API), tmp_path / "k8s", "--no-monitoring")
    assert "servicemonitor.yaml" not in manifests and "prometheusrule.yaml" not in manifests
    metrics = manifests["horizontalpodautoscaler.yaml"]["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Resource"]


def test_the_crd_validators_refuse_what_the_operator_would(tmp_path: Path) -> None:
    manifests = export(write_app(tmp_path / "api", API), tmp_path / "k8s")
    monitor = manifests["servicemonitor.yaml"]
    monitor["spec"]["endpoints"][0]["scrapeEvery"] = "15s"
    assert any("scrapeEvery" in error for error in crd_errors(monitor))
    rule = manifests["prometheusrule.yaml"]
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    assert any("expr" in error for error in crd_errors(rule))


def test_an_in_cluster_redis_is_written_and_the_pods_use_it(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop", SHOP)
    url = "redis://redis.data.svc.cluster.local:6380/2"
    manifests = export(app, tmp_path / "k8s", "--state", url, "-n", "shop")
    redis = manifests["redis-statefulset.yaml"]
    service = manifests["redis-service.yaml"]
    assert (redis["metadata"]["name"], redis["metadata"]["namespace"]) == ("redis", "data")
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == ("redis", "data")
    assert redis["spec"]["serviceName"] == "redis"
    pod_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert redis["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    container = redis["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["redis-server", "--port", "6380"]
    assert "--appendonly" in container["args"]  # an accepted message survives a restart
    assert service["spec"]["ports"][0]["port"] == 6380
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    checked = kubernetes_validate(
        tmp_path / "k8s" / "redis-statefulset.yaml", tmp_path / "k8s" / "redis-service.yaml"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The pods get the URL from the ConfigMap through --state $(SKYLIFT_STATE).
    assert manifests["configmap.yaml"]["data"]["SKYLIFT_STATE"] == url
    workload = manifests["statefulset.yaml"]  # the bucket still lives in each pod
    args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
    at = args.index("--state")
    assert args[at : at + 2] == ["--state", "$(SKYLIFT_STATE)"]


def test_queues_in_redis_need_no_volume_per_pod(tmp_path: Path) -> None:
    app = write_app(tmp_path / "jobs", JOBS)
    plain = export(app, tmp_path / "plain")
    assert "statefulset.yaml" in plain  # queues in each pod's SQLite: a volume each
    shared = export(app, tmp_path / "shared", "--state", "redis://redis:6379/0")
    assert "deployment.yaml" in shared and "statefulset.yaml" not in shared


def test_a_redis_elsewhere_is_not_run_and_a_password_stays_in_a_secret(tmp_path: Path) -> None:
    app = write_app(tmp_path / "api", API)
    out = tmp_path / "k8s"
    done = skylift(
        "export", "kubernetes", str(app), "--out", str(out),
        "--state", "redis://:s3cret@cache.example.com:6379/0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not list(out.glob("redis-*.yaml"))
    assert "run that Redis yourself" in done.stderr
    assert "kubectl create secret generic api-state" in done.stderr
    assert "s3cret" not in "".join(p.read_text() for p in out.glob("*.yaml"))
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SKYLIFT_STATE", "valueFrom": {"secretKeyRef": {"name": "api-state",
            "key": "SKYLIFT_STATE"}}} in env  # fmt: skip


def test_a_state_url_pods_cannot_use_is_refused_writing_nothing(tmp_path: Path) -> None:
    app = write_app(tmp_path / "api", API)
    done = skylift("export", "kubernetes", str(app), "--state", "unix:///tmp/redis.sock")
    assert done.returncode == 2
    assert "is not a Redis URL a pod can reach" in done.stderr
    assert not (app / "k8s").exists()
