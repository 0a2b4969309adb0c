"""How pods scale: a HorizontalPodAutoscaler on CPU, or for a queue-driven app a KEDA
ScaledObject on queue depth (read through skylift's own SQS API) and CPU.

Inside a pod, skylift's autoscaler keeps instances warm for the pod's share of the load
(HPA's formula, target 0.7 busy per instance); these scale the pods around it, with the
same 70% target on CPU and the same shape: up at once, down by at most half a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skylift.export.kubernetes_monitoring import concurrency_metric
from skylift.export.manifests import Manifest, metadata
from skylift.export.model import AppModel
from skylift.runtime.environ import ACCOUNT_ID, region

CPU_TARGET = 70  # percent of the request: skylift's own target of 0.7 busy per instance
MESSAGES_PER_BATCH_IN_FLIGHT = 10  # queue depth per pod: ten batches waiting for each

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

    @property
    def target(self) -> dict[str, str]:
        return {"apiVersion": "apps/v1", "kind": self.kind, "name": self.app.name}


def autoscaling(scaling: Scaling) -> list[tuple[str, Manifest]]:
    """The scaling objects' files: KEDA's for a queue-driven app (KEDA then owns the HPA,
    and a second HPA on the same workload would fight it), else an HPA."""
    if any(spec.queues for spec in scaling.app.specs):
        return [
            ("secret.yaml", queue_credentials(scaling)),
            ("triggerauthentication.yaml", trigger_authentication(scaling)),
            ("scaledobject.yaml", scaled_object(scaling)),
        ]
    return [("horizontalpodautoscaler.yaml", horizontal_pod_autoscaler(scaling))]


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
    """KEDA's aws-sqs-queue scaler, pointed at skylift's SQS API through the Service.

    The floor is one pod, not zero: the queues live in the pods (their `.skylift/`), so
    with none running there would be no queue to read the depth of.
    """
    app, url = scaling.app, service_url(scaling)
    triggers: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in app.specs:
        for trigger in spec.queues:
            if trigger.queue in seen:
                continue
            seen.add(trigger.queue)
            triggers.append(
                {
                    "type": "aws-sqs-queue",
                    "name": f"queue-{trigger.queue.replace('.', '-')}".lower()[:63],
                    "authenticationRef": {"name": f"{app.name}-keda-sqs"},
                    "metadata": {
                        "queueURL": f"{url}/{ACCOUNT_ID}/{trigger.queue}",
                        "queueLength": str(trigger.batch_size * MESSAGES_PER_BATCH_IN_FLIGHT),
                        "awsRegion": region(),
                        "awsEndpoint": url,
                    },
                }
            )
    triggers.append(
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(CPU_TARGET)}}
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(app.name, scaling.namespace, app.name),
        "spec": {
            "scaleTargetRef": scaling.target,
            "minReplicaCount": scaling.replicas,
            "maxReplicaCount": scaling.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": BEHAVIOR}},
            "triggers": triggers,
        },
    }
