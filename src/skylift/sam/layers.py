"""Layers: `AWS::Serverless::LayerVersion` / `AWS::Lambda::LayerVersion` with local content,
and a function's `Layers`, as the folders its code imports from.

On Lambda every layer is unpacked into /opt in order (a later layer's file replaces an
earlier one's) and Python imports from /opt/python/lib/python3.x/site-packages, then
/opt/python. Here each layer stays in its own folder, so the import path lists them
later layer first: the same module wins as on Lambda.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from skylift.errors import DeclarationError
from skylift.interpreters import for_runtime
from skylift.runtime.environ import ACCOUNT_ID
from skylift.sam.build import install_for
from skylift.sam.cfn_yaml import Physical, Resolver, Unresolvable, is_intrinsic
from skylift.sam.context import Layer, TemplateContext

LAYER_TYPES = {
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Lambda::LayerVersion": "Content",
}


def layer_arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{name}:1"


def read_layers(
    resources: Mapping[str, Any], resolver: Resolver, base_dir: Path
) -> dict[str, Layer]:
    """The template's layers with a local folder, declared so `!Ref Layer` is its ARN."""
    layers: dict[str, Layer] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in LAYER_TYPES:
            continue
        key = LAYER_TYPES[resource["Type"]]
        properties = resource.get("Properties") or {}
        where = f"layer {logical_id!r}"
        try:
            content = resolver.resolve(properties.get(key))
            name = resolver.resolve(properties.get("LayerName")) or logical_id
        except Unresolvable as exc:
            raise DeclarationError(f"{where}: {key} cannot be resolved: {exc}") from None
        if not isinstance(content, str) or content.startswith("s3://"):
            raise DeclarationError(
                f"{where}: {key} {content!r} is not a local folder: set {key} to the "
                "folder holding the layer's python/ folder, relative to the template"
            )
        folder = (base_dir / content).resolve()
        if not folder.is_dir():
            raise DeclarationError(
                f"{where}: {key} {content!r} ({folder}) is not a folder: set it to the "
                "folder holding the layer's python/ folder"
            )
        resolver.declare(str(logical_id), Physical(layer_arn(str(name), resolver.region)))
        layers[str(logical_id)] = Layer(str(logical_id), folder)
    return layers


class LayerUser(Protocol):
    @property
    def logical_id(self) -> str: ...

    @property
    def context(self) -> TemplateContext: ...

    def fail(self, message: str) -> DeclarationError: ...

    def resolve(self, value: Any, where: str) -> Any: ...


def python_path(function: LayerUser, raw: Any, runtime: str) -> tuple[str, ...]:
    """The import folders of the function's `Layers`, later layer first (see above);
    a layer's installed requirements.txt counts as its site-packages."""
    if raw is None:
        return ()
    if is_intrinsic(raw):
        raw = function.resolve(raw, "Layers")
    if not isinstance(raw, list):
        raise function.fail("Layers must be a list of layers, e.g. [!Ref MyLayer]")
    used: list[Layer] = []
    for item in raw:
        layer = _local(function, item)
        if layer is not None:
            used.append(layer)
            continue
        arn = function.resolve(item, "Layers")
        if arn is None:
            continue  # AWS::NoValue
        function.context.notes.add(
            f"function {function.logical_id!r} layer {arn}",
            "a layer from AWS is not downloaded, so its modules are missing; declare it "
            "as an AWS::Serverless::LayerVersion with a local ContentUri",
        )
    site: list[str] = []
    plain: list[str] = []
    for layer in reversed(used):
        own = install_for(
            f"layer {layer.logical_id!r}",
            layer.content_dir,
            function.context.build_root,
            for_runtime(runtime),  # built for the Python that imports it
        )
        if own is not None:
            function.context.installs.append(own)
            site.append(str(own.folder))  # installed by `skylift build` before it runs
        packages = layer.content_dir / "python" / "lib" / runtime / "site-packages"
        site += [str(packages)] if packages.is_dir() else []
        plain += (
            [str(layer.content_dir / "python")] if (layer.content_dir / "python").is_dir() else []
        )
    return (*site, *plain)


def _local(function: LayerUser, item: Any) -> Layer | None:
    if isinstance(item, dict) and set(item) == {"Ref"} and isinstance(item["Ref"], str):
        return function.context.layers.get(item["Ref"])
    return None
