"""How pods scale: a HorizontalPodAutoscaler on CPU, or for a queue-driven app a KEDA
ScaledObject on queue depth and CPU.

The depth comes from skylift's own `/metrics` (`skylift_queue_messages`, visible and in
flight), through the Prometheus that the ServiceMonitor feeds; without monitoring, KEDA
reads it through skylift's SQS API instead. With queues in Redis (`--state`) the queue
workers are a Deployment of their own, which KEDA scales from zero: the app's pods take
messages (`skylift up --no-queue-polling`) and report the depth, so there is always
someone to ask. With the queues in the pods' own volumes, the floor is `--replicas`.

Inside a pod, skylift's autoscaler keeps instances warm for the pod's share of the load
(HPA's formula, target 0.7 busy per instance); these scale the pods around it, with the
same 70% target on CPU and the same shape: up at once, down by at most half a minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from skylift.export.kubernetes_monitoring import concurrency_metric
from skylift.export.manifests import Manifest, metadata
from skylift.export.model import AppModel
from skylift.runtime.environ import ACCOUNT_ID, region

CPU_TARGET = 70  # percent of the request: skylift's own target of 0.7 busy per instance
MESSAGES_PER_BATCH_IN_FLIGHT = 10  # queue depth per pod: ten batches waiting for each
# The Service the Prometheus Operator makes for its Prometheus (kube-prometheus-stack's
# is `NAME-kube-prometheus-prometheus.monitoring`): --prometheus-url names yours.
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"

BEHAVIOR: dict[str, Any] = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    },
}


@dataclass(frozen=True)
class Scaling:
    app: AppModel
    namespace: str
    kind: str  # of the workload: Deployment or StatefulSet
    replicas: int
    max_replicas: int
    concurrency: bool = False  # also on skylift's concurrency, through the Prometheus Adapter
    prometheus: str | None = None  # where KEDA asks for the queue depth; None: the SQS API
    workers: str | None = None  # the queue workers' Deployment (queues in Redis), or None

    @property
    def target(self) -> dict[str, str]:
        return {"apiVersion": "apps/v1", "kind": self.kind, "name": self.app.name}

    @property
    def queues(self) -> dict[str, int]:
        """The app's polled queues, each with the depth per pod KEDA aims for."""
        found: dict[str, int] = {}
        for spec in self.app.specs:
            for trigger in spec.queues:
                depth = trigger.batch_size * MESSAGES_PER_BATCH_IN_FLIGHT
                found.setdefault(trigger.queue, depth)
        return found


def autoscaling(scaling: Scaling) -> list[tuple[str, Manifest]]:
    """The scaling objects' files. A queue-driven app gets KEDA's ScaledObject, which
    owns the HPA of what it scales (a second HPA on the same workload would fight it):
    on the app's workload, or on the queue workers beside an HPA for the app's pods."""
    if not scaling.queues:
        return [("horizontalpodautoscaler.yaml", horizontal_pod_autoscaler(scaling))]
    keda = [("scaledobject.yaml", scaled_object(scaling))]
    if scaling.prometheus is None:  # KEDA's SQS client needs keys, which skylift ignores
        keda[:0] = [
            ("secret.yaml", queue_credentials(scaling)),
            ("triggerauthentication.yaml", trigger_authentication(scaling)),
        ]
    if scaling.workers is not None:
        return [("horizontalpodautoscaler.yaml", horizontal_pod_autoscaler(scaling)), *keda]
    return keda


def owned(scalers: Iterable[Manifest]) -> set[tuple[str, str]]:
    """(kind, name) of each workload whose pod count an HPA or a ScaledObject sets: its
    manifest must not write `replicas`, or every `kubectl apply` would reset the count."""
    return {
        (manifest["spec"]["scaleTargetRef"]["kind"], manifest["spec"]["scaleTargetRef"]["name"])
        for manifest in scalers
        if manifest["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }


def horizontal_pod_autoscaler(scaling: Scaling) -> Manifest:
    name = scaling.app.name
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, scaling.namespace, name),
        "spec": {
            "scaleTargetRef": scaling.target,
            "minReplicas": scaling.replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                cpu_metric(),
                *([concurrency_metric(scaling.app)] if scaling.concurrency else []),
            ],
            "behavior": BEHAVIOR,
        },
    }


def cpu_metric() -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": CPU_TARGET},
        },
    }


def service_url(scaling: Scaling) -> str:
    # KEDA's operator runs in its own namespace: name the Service in full.
    return f"http://{scaling.app.name}.{scaling.namespace}.svc.cluster.local"


def queue_credentials(scaling: Scaling) -> Manifest:
    """Keys for KEDA's SQS client: skylift's SQS API takes any, as `skylift up` does."""
    name = f"{scaling.app.name}-keda-sqs"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, scaling.namespace, scaling.app.name),
        "type": "Opaque",
        "stringData": {"AWS_ACCESS_KEY_ID": "skylift", "AWS_SECRET_ACCESS_KEY": "skylift"},
    }


def trigger_authentication(scaling: Scaling) -> Manifest:
    name = f"{scaling.app.name}-keda-sqs"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": metadata(name, scaling.namespace, scaling.app.name),
        "spec": {
            "secretTargetRef": [
                {"parameter": "awsAccessKeyID", "name": name, "key": "AWS_ACCESS_KEY_ID"},
                {"parameter": "awsSecretAccessKey", "name": name, "key": "AWS_SECRET_ACCESS_KEY"},
            ]
        },
    }


def scaled_object(scaling: Scaling) -> Manifest:
    """KEDA's ScaledObject: one trigger per queue, and CPU.

    On the queue workers (queues in Redis) the floor is zero: KEDA activates them when a
    queue holds a message and ends the last one `cooldownPeriod` after they all emptied.
    On the app's own pods it is `--replicas`: their queues live in their volumes, and
    with no pod there would be nobody to take or count a message.
    """
    app = scaling.app
    workers = scaling.workers
    triggers = [queue_trigger(scaling, queue, depth) for queue, depth in scaling.queues.items()]
    triggers.append(
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(CPU_TARGET)}}
    )
    target = scaling.target if workers is None else {**scaling.target, "kind": "Deployment"}
    if workers is not None:
        target["name"] = workers
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(workers or app.name, scaling.namespace, app.name),
        "spec": {
            "scaleTargetRef": target,
            "minReplicaCount": 0 if workers is not None else scaling.replicas,
            "maxReplicaCount": scaling.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": BEHAVIOR}},
            "triggers": triggers,
        },
    }


def depth_query(scaling: Scaling, queue: str) -> str:
    """PromQL for a queue's messages waiting or being processed, as the app's pods report
    them: each its own queues' (summed), or, from Redis, all the same ones (one counted)."""
    pick = "max" if scaling.workers is not None else "sum"
    selector = (
        f'namespace="{scaling.namespace}",service="{scaling.app.name}",'
        f'queue="{queue}",state=~"visible|in_flight"'
    )
    return f"sum({pick} by (state) (skylift_queue_messages{{{selector}}}))"


def queue_trigger(scaling: Scaling, queue: str, depth: int) -> dict[str, Any]:
    name = f"queue-{queue.replace('.', '-')}".lower()[:63]
    if scaling.prometheus is not None:
        return {
            "type": "prometheus",
            "name": name,
            "metadata": {
                "serverAddress": scaling.prometheus,
                "query": depth_query(scaling, queue),
                "threshold": str(depth),
                "activationThreshold": "0",  # one message wakes the workers from zero
            },
        }
    url = service_url(scaling)
    return {
        "type": "aws-sqs-queue",
        "name": name,
        "authenticationRef": {"name": f"{scaling.app.name}-keda-sqs"},
        "metadata": {
            "queueURL": f"{url}/{ACCOUNT_ID}/{queue}",
            "queueLength": str(depth),
            "awsRegion": region(),
            "awsEndpoint": url,
        },
    }
