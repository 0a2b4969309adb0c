"""Kubernetes objects as plain data, and the YAML text of a manifest file."""

from __future__ import annotations

from typing import Any

import yaml

Manifest = dict[str, Any]


def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "skylift"}


def metadata(name: str, namespace: str, app: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(app)}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a value used twice is written twice: no &id001 anchors to read


def to_yaml(manifest: Manifest) -> str:
    """One manifest as YAML, keys in the order written (as `kubectl` users read them)."""
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def quantity_mib(mib: int) -> str:
    return f"{mib}Mi"
