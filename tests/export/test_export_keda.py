"""KEDA scales queue workers on the depth skylift's own /metrics reports.

With the queues in Redis, `skylift export kubernetes --state` splits the app: its pods
(`skylift up --no-queue-polling`) take messages and report the depth; a Deployment of
queue workers polls them, and KEDA scales it from zero. The queries the ScaledObjects
hold are run here by a real Prometheus against real servers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from export_apps import SHOP, skylift, write_app
from test_export_kubernetes import crd_errors, export, kubernetes_validate

from prometheus_server import running_prometheus, settles_at
from skylift.testing import serve

sys.path.insert(0, str(Path(__file__).parents[1] / "queues"))
from redis_server import URL, redis_prefix

__all__ = ["redis_prefix"]  # a fixture, used by name

JOBS = """
from skylift import App

app = App("jobs")
app.declare_queue("jobs", visibility_timeout=60)

@app.queue("jobs", batch_size=2)
def work(event, context):
    return None
"""
CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
STATE = "redis://redis:6379/0"


def trigger(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    scaled = manifests["scaledobject.yaml"]["spec"]
    found: dict[str, Any] = next(t for t in scaled["triggers"] if t["type"] == "prometheus")
    return found


def test_queues_in_redis_get_workers_that_keda_scales_from_zero(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    manifests = export(write_app(tmp_path / "jobs", JOBS), out, "--state", STATE, "-n", "shop")
    front, workers = manifests["deployment.yaml"], manifests["queues-deployment.yaml"]
    front_args = front["spec"]["template"]["spec"]["containers"][0]["args"]
    worker_args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-queue-polling" in front_args and "--no-queue-polling" not in worker_args
    assert [a for a in front_args if a != "--no-queue-polling"] == worker_args
    # The Service, its PodDisruptionBudget and the ServiceMonitor select the app's pods
    # only: the workers take no traffic and are not counted twice.
    worker_labels = workers["spec"]["template"]["metadata"]["labels"]
    assert workers["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
    for name in ("service.yaml", "poddisruptionbudget.yaml", "servicemonitor.yaml"):
        spec = manifests[name]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert not selector.items() <= worker_labels.items(), name
        assert selector.items() <= front["spec"]["template"]["metadata"]["labels"].items()
    scaled = manifests["scaledobject.yaml"]
    assert scaled["metadata"]["name"] == "jobs-queues"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "jobs-queues",
    }  # fmt: skip
    assert scaled["spec"]["minReplicaCount"] == 0
    assert trigger(manifests)["metadata"]["threshold"] == "20"  # ten batches of two
    # The app's pods scale on CPU and concurrency, as an HTTP app's do.
    hpa = manifests["horizontalpodautoscaler.yaml"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "jobs" and hpa["minReplicas"] == 2
    # Neither writes a count that `kubectl apply` would reset the autoscalers' to.
    assert "replicas" not in front["spec"] and "replicas" not in workers["spec"]
    custom = ("ScaledObject", "ServiceMonitor", "PrometheusRule")
    core = [out / name for name, m in manifests.items() if m["kind"] not in custom]
    checked = kubernetes_validate(*core)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert crd_errors(scaled) == []
    plan = skylift("export", "kubernetes", str(tmp_path / "jobs"), "--state", STATE, "--dry-run")
    assert "jobs-queues polls them, scaled by KEDA from zero" in plan.stderr + plan.stdout


def test_queues_with_buckets_in_pods_stay_with_the_pods(tmp_path: Path) -> None:
    manifests = export(write_app(tmp_path / "shop", SHOP), tmp_path / "k8s", "--state", STATE)
    assert "queues-deployment.yaml" not in manifests  # a bucket ties work to its pod
    assert manifests["scaledobject.yaml"]["spec"]["minReplicaCount"] == 2


def test_a_bad_prometheus_url_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    app = write_app(tmp_path / "jobs", JOBS)
    done = skylift("export", "kubernetes", str(app), "--prometheus-url", "prometheus:9090")
    assert done.returncode == 2 and "is not an http(s) URL" in done.stderr
    done = skylift(
        "export", "kubernetes", str(app), "--prometheus-url", "http://p:9090", "--no-monitoring"
    )
    assert done.returncode == 2 and "leave out --no-monitoring" in done.stderr
    assert not (app / "k8s").exists()
    url = "http://kube-prometheus-stack-prometheus.monitoring:9090"
    manifests = export(app, tmp_path / "k8s", "--prometheus-url", url)
    assert trigger(manifests)["metadata"]["serverAddress"] == url


def scrape(targets: dict[str, str]) -> str:
    """A job scraping each server as the ServiceMonitor would, labelled as the Prometheus
    Operator labels a pod's series (namespace, service, pod)."""
    groups = "".join(
        f"      - targets: ['{urlparse(url).netloc}']\n"
        f"        labels: {{namespace: shop, service: jobs, pod: {pod}}}\n"
        for pod, url in targets.items()
    )
    return f"  - job_name: jobs\n    metrics_path: /_skylift/metrics\n    static_configs:\n{groups}"


def send(url: str, count: int) -> None:
    sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
    queue = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    for i in range(count):
        sqs.send_message(QueueUrl=queue, MessageBody=f"job-{i}")


def test_prometheus_counts_redis_queues_once_however_many_pods_report_them(
    tmp_path: Path, redis_prefix: str
) -> None:
    app = write_app(tmp_path / "jobs", JOBS)
    promql = trigger(export(app, tmp_path / "k8s", "--state", STATE, "-n", "shop"))["metadata"]
    options = ["--quiet", "--state", f"{URL}?prefix={redis_prefix}", "--no-queue-polling"]
    two = write_app(tmp_path / "two" / "jobs", JOBS)
    with serve(str(app), options=options) as one_url, serve(str(two), options=options) as two_url:
        send(one_url, 3)
        send(two_url, 2)
        with running_prometheus(scrape({"a": one_url, "b": two_url}), tmp_path) as prometheus:
            settles_at(prometheus, 'count(up{job="jobs"} == 1)', 2)
            settles_at(prometheus, promql["query"], 5)  # both pods report all five: once


def test_prometheus_sums_the_queues_each_pod_keeps(tmp_path: Path) -> None:
    # Each pod's own SQLite queue; the function is turned off, so the messages wait.
    source = JOBS.replace("@app.queue", "@app.function(max_concurrency=0)\n@app.queue")
    app = write_app(tmp_path / "jobs", source)
    promql = trigger(export(app, tmp_path / "k8s", "-n", "shop"))["metadata"]
    two = write_app(tmp_path / "two" / "jobs", source)
    with (
        serve(str(app), options=["--quiet"]) as one_url,
        serve(str(two), options=["--quiet"]) as two_url,
    ):
        send(one_url, 3)
        send(two_url, 2)
        with running_prometheus(scrape({"a": one_url, "b": two_url}), tmp_path) as prometheus:
            settles_at(prometheus, 'count(up{job="jobs"} == 1)', 2)
            settles_at(prometheus, promql["query"], 5)  # three in one pod, two in the other
