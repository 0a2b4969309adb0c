"""The app an exporter reads: its functions' specs and resources, loaded without a server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skylift.loader import AppTarget, Target
from skylift.spec import FunctionSpec, Resources


@dataclass(frozen=True)
class AppModel:
    """An app as declared: `name` (for images and manifests), where its code lives, and
    the specs and resources `skylift up` would serve.

    `target` is how `skylift up` finds it inside the code folder (`app` for app.py,
    `template.yaml` for a template), so an image can run the same command.
    """

    name: str
    code_dir: Path
    target: str
    specs: tuple[FunctionSpec, ...]
    resources: Resources

    @property
    def stateful(self) -> bool:
        """Whether it keeps queues or buckets (in `.skylift/`), which a pod must keep too."""
        return bool(self.resources.queues or self.resources.buckets)


async def load_app(target: Target, name: str | None = None) -> AppModel:
    """Load `target` as `skylift up` would (its init phase runs in a zygote), then stop it.

    >>> app = await load_app(resolve_target("examples/make-change"))  # doctest: +SKIP
    >>> [spec.name for spec in app.specs]  # doctest: +SKIP
    ['change']
    """
    from skylift.engine.platform import Platform

    async with await Platform.start(target, policy=None) as platform:
        specs = tuple(platform.specs.values())
        resources = platform.resources
    if isinstance(target, AppTarget):
        code_dir = Path(target.code_dir)
        if target.attribute is not None:
            entry = f"{target.module}:{target.attribute}"
        else:
            entry = "." if target.module == "app" else f"{target.module}.py"
    else:
        code_dir = Path(target.path).parent
        entry = Path(target.path).name
    return AppModel(name or _name(code_dir), code_dir, entry, specs, resources)


def _name(code_dir: Path) -> str:
    """A DNS-1123 label from the app's folder name (Kubernetes and image names need one)."""
    cleaned = "".join(c if c.isalnum() else "-" for c in code_dir.name.lower()).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return (cleaned or "app")[:50].strip("-") or "app"
