"""`skylift export kubernetes`: manifests that run the app's image on a cluster.

One pod runs `skylift up` (every function, with skylift's own autoscaler inside it);
Kubernetes scales pods. An app that keeps queues or buckets gets a StatefulSet, each pod
with its own volume for `.skylift/`, so nothing a pod accepted is lost when it is
rescheduled or scaled in (it is served again when the pod returns); other apps get a
Deployment. Scaling: an HPA on CPU, or, for a queue-driven app, a KEDA ScaledObject on
queue depth and CPU (see `kubernetes_scaling`); a workload either scales writes no
`replicas`, so a later `kubectl apply` leaves their count alone. With the queues in
Redis, their workers are a Deployment of their own (`NAME-queues`) that KEDA scales from
zero, while the app's pods take messages without polling them. With `monitoring`, a
ServiceMonitor and a PrometheusRule (`kubernetes_monitoring`); with `state`, the pods
keep their queues in Redis, which runs in the cluster when the URL names it there
(`kubernetes_redis`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from skylift.export.docker import HEALTH_PATH, PORT, STATE_DIR, UID
from skylift.export.kubernetes_monitoring import monitoring
from skylift.export.kubernetes_redis import (
    STATE_VARIABLE,
    State,
    redis_manifests,
    state_environment,
)
from skylift.export.kubernetes_scaling import PROMETHEUS_URL, Scaling, autoscaling, owned
from skylift.export.manifests import Manifest, labels, metadata, quantity_mib, to_yaml
from skylift.export.model import AppModel
from skylift.export.plan import ExportError, File, Plan
from skylift.runtime.environ import region

SUPERVISOR_MIB = 128  # the `skylift up` process and its zygote, before any instance
LAMBDA_MIB_PER_VCPU = 1769  # Lambda gives a function one vCPU at 1,769 MB
DRAIN_SECONDS = 10
CONFIG_DIR = "/etc/skylift"
ENV_VARS_FILE = "env-vars.json"


@dataclass(frozen=True)
class KubernetesExporter:
    """Plan the manifests for `app`'s image `image` in `namespace`."""

    image: str | None = None
    namespace: str = "default"
    replicas: int = 2
    max_replicas: int = 10
    storage: str = "1Gi"
    state: str | None = None  # --state redis://...: the queues are kept there
    monitoring: bool = True  # the Prometheus Operator's objects and the adapter's metric
    prometheus: str = PROMETHEUS_URL  # where KEDA reads the queue depth (with monitoring)

    def plan(self, app: AppModel) -> Plan:
        if not 1 <= self.replicas <= self.max_replicas:
            raise ExportError(
                f"--replicas {self.replicas} must be from 1 to --max-replicas "
                f"{self.max_replicas}: lower it or raise --max-replicas"
            )
        state = State.parse(self.state) if self.state is not None else None
        workers = queue_workers(app, state)
        workload = self.workload(app, state, polling=workers is None)
        scaling = Scaling(
            app,
            self.namespace,
            workload["kind"],
            self.replicas,
            self.max_replicas,
            self.monitoring,
            prometheus=self.prometheus if self.monitoring else None,
            workers=workers,
        )
        scalers = autoscaling(scaling)
        if (workload["kind"], app.name) in owned(m for _, m in scalers):
            del workload["spec"]["replicas"]  # the autoscaler's: from one pod to its floor
        manifests = [
            ("configmap.yaml", self.config_map(app, state)),
            (f"{workload['kind'].lower()}.yaml", workload),
            *([("queues-deployment.yaml", self.workers(app, state, workers))] if workers else []),
            ("service.yaml", self.service(app)),
            *scalers,
            ("poddisruptionbudget.yaml", self.disruption_budget(app)),
            *(monitoring(app, self.namespace) if self.monitoring else []),
            *(redis_manifests(state, self.namespace, app.name) if state else []),
        ]
        files = tuple(
            File(path, to_yaml(manifest), manifest["kind"], manifest["metadata"]["name"])
            for path, manifest in manifests
        )
        notes = []
        if state is not None and state.secret:
            notes.append(
                f"--state holds a password: the pods read it from the Secret {app.name}-state; "
                f"create it with kubectl create secret generic {app.name}-state "
                f"--from-literal={STATE_VARIABLE}='URL'"
            )
        if state is not None and not state.in_cluster():
            notes.append(f"--state names {state.host}: run that Redis yourself")
        if self.monitoring:
            notes.append(
                "servicemonitor.yaml and prometheusrule.yaml need the Prometheus Operator, the "
                "HPA's concurrency metric the Prometheus Adapter (docs/kubernetes.md); "
                "--no-monitoring leaves them out"
            )
        if workers is not None:
            notes.append(
                f"the queues are in Redis: {workers} polls them, scaled by KEDA from zero on "
                f"their depth; the {app.name} pods take messages (--no-queue-polling)"
            )
        if stateful(app, state):
            notes.append(
                "the app keeps queues or buckets: each pod keeps its own in a volume of its "
                "StatefulSet, so a message is consumed by the pod that accepted it"
            )
        return Plan(files, tuple(notes))

    # --- objects ---------------------------------------------------------------------

    def config_map(self, app: AppModel, state: State | None) -> Manifest:
        # The functions' variables as an --env-vars file: change them here, not in the image.
        env_vars = {s.name: dict(s.environment) for s in app.specs if s.environment}
        data = {
            "AWS_REGION": region(),
            "AWS_DEFAULT_REGION": region(),
            ENV_VARS_FILE: json.dumps(env_vars, indent=2, sort_keys=True) + "\n",
        }
        if state is not None and not state.secret:
            data[STATE_VARIABLE] = state.url
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(f"{app.name}-config", self.namespace, app.name),
            "data": data,
        }

    def workload(
        self, app: AppModel, state: State | None = None, *, polling: bool = True
    ) -> Manifest:
        pod = self.pod(app, state, polling=polling)
        spec: dict[str, Any] = {
            "replicas": self.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app.name}},
        }
        if stateful(app, state):
            spec["serviceName"] = app.name
            spec["podManagementPolicy"] = "Parallel"
            spec["template"] = pod
            spec["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": "state"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": self.storage}},
                    },
                }
            ]
            kind = "StatefulSet"
        else:
            spec["strategy"] = {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            }
            spec["template"] = pod
            pod["spec"]["volumes"].append({"name": "state", "emptyDir": {}})
            kind = "Deployment"
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": metadata(app.name, self.namespace, app.name),
            "spec": spec,
        }

    def workers(self, app: AppModel, state: State | None, name: str) -> Manifest:
        """The queue workers: the same pods, polling the queues in Redis, behind no
        Service. No `replicas`: Kubernetes starts one, so the queues drain even where KEDA
        is missing, and a later `kubectl apply` leaves KEDA's count alone (a written
        count would reset a scaled-to-zero Deployment to it)."""
        pod = self.pod(app, state)
        pod["metadata"]["labels"] = {**labels(name), "app.kubernetes.io/part-of": app.name}
        pod["spec"]["volumes"].append({"name": "state", "emptyDir": {}})
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(name, self.namespace, app.name),
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
                },
                "template": pod,
            },
        }

    def pod(self, app: AppModel, state: State | None = None, *, polling: bool = True) -> Manifest:
        def probe(period: int, failures: int) -> dict[str, Any]:
            return {
                "httpGet": {"path": HEALTH_PATH, "port": "http"},
                "periodSeconds": period,
                "timeoutSeconds": 3,
                "failureThreshold": failures,
            }

        longest = max((spec.timeout for spec in app.specs), default=3)
        container = {
            "name": "skylift",
            "image": self.image or f"{app.name}:latest",
            "args": [
                "skylift",
                "up",
                "--host",
                "0.0.0.0",
                "--port",
                str(PORT),
                "--no-reload",  # an image's code does not change: no file watching
                "--env-vars",
                f"{CONFIG_DIR}/{ENV_VARS_FILE}",
                # The Service's names: requests naming any other Host are refused (421).
                *(
                    arg
                    for name in service_names(app.name, self.namespace)
                    for arg in ("--allow-host", name)
                ),
                # Kubernetes puts the variable's value in: the URL is in no manifest's args.
                *(("--state", f"$({STATE_VARIABLE})") if state is not None else ()),
                *(() if polling else ("--no-queue-polling",)),
                app.target,
            ],
            "env": [
                {
                    # The control and Lambda APIs' token (docs/kubernetes.md): from a Secret
                    # you create; without one each pod makes its own and logs it.
                    "name": "SKYLIFT_TOKEN",
                    "valueFrom": {
                        "secretKeyRef": {
                            "name": f"{app.name}-token",
                            "key": "SKYLIFT_TOKEN",
                            "optional": True,
                        }
                    },
                },
                *(state_environment(state, app.name) if state is not None else []),
            ],
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "envFrom": [{"configMapRef": {"name": f"{app.name}-config"}}],
            # Up to 2 minutes for the init phase; then ready and alive on the same endpoint.
            "startupProbe": probe(2, 60),
            "readinessProbe": probe(5, 2),
            "livenessProbe": probe(10, 3),
            "resources": resources(app),
            # Let endpoints drop the pod before SIGTERM; skylift then finishes what it runs.
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [
                {"name": "state", "mountPath": STATE_DIR},
                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            ],
        }
        return {
            "metadata": {"labels": labels(app.name)},
            "spec": {
                "terminationGracePeriodSeconds": DRAIN_SECONDS + math.ceil(longest) + 10,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": UID,
                    "runAsGroup": UID,
                    "fsGroup": UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [
                    {
                        "name": "config",
                        "configMap": {
                            "name": f"{app.name}-config",
                            "items": [{"key": ENV_VARS_FILE, "path": ENV_VARS_FILE}],
                        },
                    }
                ],
            },
        }

    def service(self, app: AppModel) -> Manifest:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(app.name, self.namespace, app.name),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": app.name},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }

    def disruption_budget(self, app: AppModel) -> Manifest:
        # With one replica, minAvailable 1 would block every node drain: allow one down.
        budget: dict[str, Any] = {"minAvailable": 1} if self.replicas > 1 else {"maxUnavailable": 1}
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(app.name, self.namespace, app.name),
            "spec": {**budget, "selector": {"matchLabels": {"app.kubernetes.io/name": app.name}}},
        }


def queue_workers(app: AppModel, state: State | None) -> str | None:
    """The name of the queue workers' Deployment, when the queues are in Redis and
    nothing else ties a message to a pod (no buckets in pods' volumes); else None."""
    polled = any(spec.queues for spec in app.specs)
    if state is None or not polled or stateful(app, state):
        return None
    return f"{app.name}-queues"


def stateful(app: AppModel, state: State | None) -> bool:
    """Whether each pod keeps state in its own volume: buckets, or queues not in Redis."""
    return bool(app.resources.buckets or (app.resources.queues and state is None))


def warm_mib(app: AppModel) -> int:
    """The functions' memory with their warm instances (at least one each), in MiB."""
    return sum(spec.memory * max(1, spec.min_instances) for spec in app.specs)


def resources(app: AppModel) -> dict[str, Any]:
    """Requests from the functions' memory; CPU in proportion, as Lambda allocates it.

    The request is the supervisor plus one instance of each function (or its warm
    instances); the limit doubles it, for instances started by a burst. No CPU limit:
    throttling a pod's CPU would stretch every invocation instead of scaling out.
    """
    memory = SUPERVISOR_MIB + warm_mib(app)
    cpu = max(100, math.ceil(warm_mib(app) * 1000 / LAMBDA_MIB_PER_VCPU))
    return {
        "requests": {"cpu": f"{cpu}m", "memory": quantity_mib(memory)},
        "limits": {"memory": quantity_mib(2 * memory)},
    }


def service_names(name: str, namespace: str) -> list[str]:
    """How pods and KEDA reach the app through its Service, short to fully qualified."""
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc.cluster.local"]
