"""`--state redis://...` on a cluster: how pods get the URL, and a Redis to run when the
URL names one inside the cluster.

A host without dots (`redis`) or a Service's full name (`redis.data.svc.cluster.local`)
is in the cluster: the export then writes a one-replica Redis StatefulSet with its own
volume and append-only file (a message a pod accepted survives a Redis restart), and the
headless Service that gives it that name. Any other host is yours to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from skylift.export.manifests import Manifest, labels, metadata
from skylift.export.plan import ExportError
from skylift.queues.redis_url import SCHEMES, shown

REDIS_IMAGE = "redis:7.4.2-bookworm"  # Docker Official image, pinned to a release
REDIS_UID = 999  # the image's `redis` user
CLUSTER_SUFFIX = ".svc.cluster.local"
STATE_VARIABLE = "SKYLIFT_STATE"


@dataclass(frozen=True)
class State:
    """A `--state` URL as the manifests use it."""

    url: str

    @classmethod
    def parse(cls, url: str) -> State:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or parts.scheme == "unix" or not parts.hostname:
            raise ExportError(
                f"--state {shown(url)!r} is not a Redis URL a pod can reach: use "
                "redis://HOST:PORT/DB (HOST without dots for a Redis this export runs)"
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ExportError(f"--state {shown(url)!r}: the port is not a number") from None
        return cls(url)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 6379

    @property
    def secret(self) -> bool:
        """Whether the URL holds a password (then it goes in a Secret, not the ConfigMap)."""
        return urlsplit(self.url).password is not None

    def in_cluster(self) -> bool:
        return "." not in self.host or self.host.endswith(CLUSTER_SUFFIX)

    def redis_name(self, namespace: str) -> tuple[str, str]:
        """(the Service's name, its namespace) for an in-cluster host."""
        parts = self.host.removesuffix(CLUSTER_SUFFIX).split(".")
        return parts[0], parts[1] if len(parts) > 1 else namespace


def state_environment(state: State, app: str) -> list[dict[str, Any]]:
    """The pod's SKYLIFT_STATE, which its args pass as `--state $(SKYLIFT_STATE)`: from
    the ConfigMap (envFrom), or with a password from the Secret NAME-state you create."""
    if not state.secret:
        return []
    return [
        {
            "name": STATE_VARIABLE,
            "valueFrom": {"secretKeyRef": {"name": f"{app}-state", "key": STATE_VARIABLE}},
        }
    ]


def redis_manifests(state: State, namespace: str, app: str) -> list[tuple[str, Manifest]]:
    if not state.in_cluster():
        return []
    name, where = state.redis_name(namespace)
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": app}
    pod_labels = {**labels(name), "app.kubernetes.io/part-of": app}
    ping = {"exec": {"command": ["redis-cli", "-p", str(state.port), "ping"]}}
    container = {
        "name": "redis",
        "image": REDIS_IMAGE,
        "args": [
            "redis-server",
            "--port",
            str(state.port),
            "--appendonly",
            "yes",
            "--dir",
            "/data",
        ],
        "ports": [{"name": "redis", "containerPort": state.port, "protocol": "TCP"}],
        "readinessProbe": {**ping, "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {**ping, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {**metadata(name, where, app), "labels": pod_labels},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": REDIS_UID,
                        "runAsGroup": REDIS_UID,
                        "fsGroup": REDIS_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata(name, where, app), "labels": pod_labels},
        "spec": {
            "clusterIP": "None",  # headless: the name resolves to the one Redis pod
            "selector": selector,
            "ports": [
                {"name": "redis", "port": state.port, "targetPort": "redis", "protocol": "TCP"}
            ],
        },
    }
    return [("redis-statefulset.yaml", statefulset), ("redis-service.yaml", service)]
