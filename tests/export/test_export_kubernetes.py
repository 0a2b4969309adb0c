"""`skylift export kubernetes`, validated by kubernetes-validate --strict (core kinds) and
the CRD schemas of KEDA and the Prometheus Operator (see data/README.md)."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from export_apps import API, SHOP, all_apps, skylift, tool, write_app

from skylift import env_vars

DATA = Path(__file__).parent / "data"
CRD_SCHEMAS = {
    "ScaledObject": DATA / "keda-scaledobject.schema.json",
    "TriggerAuthentication": DATA / "keda-triggerauthentication.schema.json",
    "ServiceMonitor": DATA / "prometheus-operator-servicemonitor.schema.json",
    "PrometheusRule": DATA / "prometheus-operator-prometheusrule.schema.json",
}


def closed(schema: Any) -> Any:
    """The schema with unknown properties refused on every object that lists its own."""
    if isinstance(schema, dict):
        schema = {key: closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


def crd_errors(manifest: dict[str, Any]) -> list[str]:
    schema = closed(json.loads(CRD_SCHEMAS[manifest["kind"]].read_text()))
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(manifest)]


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
    )


def export(app: Path, out: Path, *options: str) -> dict[str, dict[str, Any]]:
    done = skylift("export", "kubernetes", str(app), "--out", str(out), *options)
    assert done.returncode == 0, done.stderr
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}


def test_every_manifest_of_every_app_validates(tmp_path: Path) -> None:
    for app in all_apps(tmp_path):
        out = tmp_path / "k8s" / app.name
        manifests = export(app, out, "--state", "redis://redis:6379/0")
        assert {"servicemonitor.yaml", "prometheusrule.yaml", "redis-statefulset.yaml"} <= set(
            manifests
        )
        core = [out / n for n, m in manifests.items() if m["kind"] not in CRD_SCHEMAS]
        checked = kubernetes_validate(*core)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.count(" passed for resource ") == len(core)
        for name, manifest in manifests.items():
            if manifest["kind"] in CRD_SCHEMAS:
                assert crd_errors(manifest) == [], name


def test_a_workload_an_autoscaler_owns_writes_no_replicas(tmp_path: Path) -> None:
    # A written count would be applied again by every `kubectl apply`, undoing the
    # HPA's or KEDA's; a workload nothing scales (the in-cluster Redis) keeps its own.
    apps = [write_app(tmp_path / "api", API), write_app(tmp_path / "shop", SHOP)]
    for app, options in itertools.product(apps, [(), ("--state", "redis://redis:6379/0")]):
        out = tmp_path / "k8s" / f"{app.name}{len(options)}"
        manifests = export(app, out, *options)
        scaled = {
            (m["spec"]["scaleTargetRef"]["kind"], m["spec"]["scaleTargetRef"]["name"])
            for m in manifests.values()
            if m["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
        }
        workloads = {
            (m["kind"], m["metadata"]["name"]): m
            for m in manifests.values()
            if m["kind"] in ("Deployment", "StatefulSet")
        }
        assert scaled & {("Deployment", app.name), ("StatefulSet", app.name)}, app.name
        assert scaled <= workloads.keys()
        redis = manifests.get("redis-statefulset.yaml")  # named after --state's host
        for key, workload in workloads.items():
            if key in scaled:
                assert "replicas" not in workload["spec"], key
            else:
                assert workload is redis, key
                assert workload["spec"]["replicas"] == 1
        assert (redis is not None) == bool(options)
        core = [out / n for n, m in manifests.items() if m["kind"] not in CRD_SCHEMAS]
        checked = kubernetes_validate(*core)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_validators_refuse_what_kubernetes_and_keda_would(tmp_path: Path) -> None:
    manifests = export(write_app(tmp_path / "shop", SHOP), tmp_path / "k8s")
    broken = manifests["statefulset.yaml"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert kubernetes_validate(tmp_path / "broken.yaml").returncode != 0
    scaled = manifests["scaledobject.yaml"]
    scaled["spec"]["minReplicas"] = 1
    assert any("minReplicas" in error for error in crd_errors(scaled))
    del scaled["spec"]["minReplicas"], scaled["spec"]["scaleTargetRef"]
    assert any("scaleTargetRef" in error for error in crd_errors(scaled))


def test_an_http_app_gets_a_deployment_probed_on_health_and_an_hpa(tmp_path: Path) -> None:
    manifests = export(
        write_app(tmp_path / "api", API),
        tmp_path / "k8s",
        "--image",
        "registry/api:1.0",
        "--replicas",
        "3",
    )
    assert set(manifests) == {
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "horizontalpodautoscaler.yaml",
        "poddisruptionbudget.yaml",
        "servicemonitor.yaml",
        "prometheusrule.yaml",
    }
    deployment = manifests["deployment.yaml"]
    assert "replicas" not in deployment["spec"]  # the HPA's, from its floor of 3
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry/api:1.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/_skylift/health", "port": "http"}
    # hello keeps 2 instances of 1024 MB warm, fallback 1 of 128, plus 128 for skylift.
    assert container["resources"] == {
        "requests": {"cpu": "1231m", "memory": "2304Mi"},
        "limits": {"memory": "4608Mi"},
    }
    assert container["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "10"]}}
    assert container["envFrom"] == [{"configMapRef": {"name": "api-config"}}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    hpa = manifests["horizontalpodautoscaler.yaml"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert manifests["poddisruptionbudget.yaml"]["spec"]["minAvailable"] == 1
    assert manifests["service.yaml"]["spec"]["ports"][0]["targetPort"] == "http"


def test_a_queue_app_keeps_its_state_per_pod_and_scales_on_queue_depth(tmp_path: Path) -> None:
    manifests = export(write_app(tmp_path / "shop", SHOP), tmp_path / "k8s", "-n", "shop")
    assert "horizontalpodautoscaler.yaml" not in manifests  # KEDA owns the HPA
    workload = manifests["statefulset.yaml"]
    claims = workload["spec"]["volumeClaimTemplates"]
    assert claims[0]["metadata"]["name"] == "state"
    mounts = workload["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "state", "mountPath": "/app/.skylift"} in mounts
    scaled = manifests["scaledobject.yaml"]["spec"]
    assert scaled["scaleTargetRef"]["kind"] == "StatefulSet"
    assert scaled["minReplicaCount"] == 2  # not zero: the queues live in the pods
    # The depth from skylift's /metrics, through the Operator's Prometheus: each pod's
    # own queues, summed.
    queue = next(t for t in scaled["triggers"] if t["type"] == "prometheus")
    assert queue["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": 'sum(sum by (state) (skylift_queue_messages{namespace="shop",service="shop",'
        'queue="orders",state=~"visible|in_flight"}))',
        "threshold": "50",
        "activationThreshold": "0",
    }
    assert {t["type"] for t in scaled["triggers"]} == {"prometheus", "cpu"}
    assert "triggerauthentication.yaml" not in manifests  # Prometheus needs no keys
    assert all(m["metadata"]["namespace"] == "shop" for m in manifests.values())


def test_without_monitoring_keda_reads_the_depth_through_the_sqs_api(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop", SHOP)
    manifests = export(app, tmp_path / "k8s", "-n", "shop", "--no-monitoring")
    scaled = manifests["scaledobject.yaml"]["spec"]
    queue = next(t for t in scaled["triggers"] if t["type"] == "aws-sqs-queue")
    assert queue["metadata"]["queueURL"] == (
        "http://shop.shop.svc.cluster.local/123456789012/orders"
    )
    assert queue["metadata"]["awsEndpoint"] == "http://shop.shop.svc.cluster.local"
    assert queue["metadata"]["queueLength"] == "50"
    assert queue["authenticationRef"]["name"] == "shop-keda-sqs"
    assert {t["type"] for t in scaled["triggers"]} == {"aws-sqs-queue", "cpu"}
    assert "triggerauthentication.yaml" in manifests and "secret.yaml" in manifests
    for name in ("scaledobject.yaml", "triggerauthentication.yaml"):
        assert crd_errors(manifests[name]) == []


def test_the_configmap_holds_an_env_vars_file_skylift_up_reads(tmp_path: Path) -> None:
    manifests = export(write_app(tmp_path / "shop", SHOP), tmp_path / "k8s")
    data = manifests["configmap.yaml"]["data"]
    (tmp_path / "env-vars.json").write_text(data["env-vars.json"])
    assert env_vars.load(tmp_path / "env-vars.json") == {"item": {"TABLE": "items"}}
    assert data["AWS_REGION"]
    args = manifests["statefulset.yaml"]["spec"]["template"]["spec"]["containers"][0]["args"]
    at = args.index("--env-vars")
    assert args[at : at + 2] == ["--env-vars", "/etc/skylift/env-vars.json"] and args[-1] == "."
    # The Service's names are this server's (any other Host gets 421).
    assert "--allow-host" in args


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop", SHOP)
    done = skylift("export", "kubernetes", str(app), "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "FILE", "BYTES"]
    assert any(line.split()[:3] == ["StatefulSet", "shop", "statefulset.yaml"] for line in lines)
    assert any(line.split()[0] == "ScaledObject" for line in lines)
    assert not (app / "k8s").exists()


def test_bad_replicas_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    app = write_app(tmp_path / "api", API)
    done = skylift("export", "kubernetes", str(app), "--replicas", "12")
    assert done.returncode == 2
    assert "--replicas 12 must be from 1 to --max-replicas 10" in done.stderr
    assert not (app / "k8s").exists()


def test_a_name_kubernetes_would_refuse_is_refused_here(tmp_path: Path) -> None:
    app = write_app(tmp_path / "api", API)
    done = skylift("export", "kubernetes", str(app), "--name", "My_App")
    assert done.returncode == 2 and "--name 'My_App' is invalid" in done.stderr
    assert not (app / "k8s").exists()
