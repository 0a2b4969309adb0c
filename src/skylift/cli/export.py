"""`skylift export docker|kubernetes|sam|prometheus`: files that run the app (or watch
it) elsewhere; never a deploy."""

from __future__ import annotations

import re
from pathlib import Path

import click

from skylift.cli.common import fail
from skylift.errors import SkyliftError
from skylift.export.model import AppModel
from skylift.export.plan import Exporter, Plan, table, write
from skylift.loader import resolve_target

APP_HELP = "APP: a directory holding app.py or template.yaml, a .py file, or module:attribute."


def _load(app: str | None, template: str | None, name: str | None) -> AppModel:
    from skylift.aio import run
    from skylift.export.model import load_app

    if name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?", name):
        # It names the image, the Kubernetes objects and their DNS names.
        fail(
            f"--name {name!r} is invalid: use up to 50 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )

    loaded: list[AppModel] = []

    async def load() -> None:
        loaded.append(await load_app(resolve_target(app, template), name))

    try:
        run(load)
    except SkyliftError as exc:
        fail(str(exc))
    return loaded[0]


def _export(model: AppModel, exporter: Exporter, out: Path, dry_run: bool) -> None:
    try:
        plan: Plan = exporter.plan(model)
    except SkyliftError as exc:
        fail(str(exc))
    if dry_run:
        click.echo(table(plan), nl=False)
    else:
        try:
            written = write(plan, out)
        except (SkyliftError, OSError) as exc:
            fail(f"cannot write the export to {out}: {exc}")
        shown = [f for f in plan.files if f.source is None]
        for entry in shown:
            click.echo(f"wrote {out / entry.path}", err=True)
        if len(written) > len(shown):
            click.echo(f"copied {len(written) - len(shown)} source files into {out}", err=True)
    for note in plan.notes:
        click.echo(f"skylift: note: {note}", err=True)


@click.group(epilog=APP_HELP)
def export() -> None:
    """Write files that run APP elsewhere: a container image, Kubernetes, AWS SAM, and
    Prometheus alerting."""


_template = click.option(
    "--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template."
)
_name = click.option("--name", default=None, help="The app's name (default: its folder's).")
_dry_run = click.option("--dry-run", is_flag=True, help="Print the plan as a table; write nothing.")


@export.command(epilog=APP_HELP)
@click.argument("app", required=False)
@_template
@_name
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="The build context to write (default: the app's folder).",
)
@click.option("--base-image", default=None, help="The Python image (default: pinned slim image).")
@click.option(
    "--skylift",
    "skylift_requirement",
    default=None,
    metavar="REQUIREMENT",
    help="Install skylift with this pip requirement instead of copying this source tree.",
)
@_dry_run
def docker(
    app: str | None,
    template: str | None,
    name: str | None,
    out: str | None,
    base_image: str | None,
    skylift_requirement: str | None,
    dry_run: bool,
) -> None:
    """A Dockerfile and .dockerignore serving APP with `skylift up` (nothing is built)."""
    from skylift.export.docker import DockerExporter

    model = _load(app, template, name)
    where = Path(out) if out is not None else model.code_dir
    _export(model, DockerExporter(where, base_image, skylift_requirement), where, dry_run)
    if not dry_run:
        click.echo(f"build it with: docker build -t {model.name} {where}", err=True)


@export.command(epilog=APP_HELP)
@click.argument("app", required=False)
@_template
@_name
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="The folder for the manifests (default: k8s/ in the app's folder).",
)
@click.option("--image", default=None, help="The app's image (default: NAME:latest).")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option(
    "--replicas",
    default=2,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Pods at least (the autoscaler's floor).",
)
@click.option(
    "--max-replicas",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Pods at most.",
)
@click.option(
    "--state",
    default=None,
    metavar="URL",
    help="Pods keep the queues in this Redis (redis://HOST:PORT/DB); a HOST without dots "
    "(or NAME.NS.svc.cluster.local) gets a Redis StatefulSet and Service.",
)
@click.option(
    "--monitoring/--no-monitoring",
    default=True,
    show_default=True,
    help="A ServiceMonitor, a PrometheusRule and the HPA's concurrency metric (Prometheus "
    "Operator and Adapter).",
)
@click.option(
    "--prometheus-url",
    default=None,
    metavar="URL",
    help="The Prometheus KEDA asks for queue depth (default: the Prometheus Operator's "
    "prometheus-operated.monitoring.svc:9090).",
)
@_dry_run
def kubernetes(
    app: str | None,
    template: str | None,
    name: str | None,
    out: str | None,
    image: str | None,
    namespace: str,
    replicas: int,
    max_replicas: int,
    state: str | None,
    monitoring: bool,
    prometheus_url: str | None,
    dry_run: bool,
) -> None:
    """Kubernetes manifests for APP's image: workload, Service, autoscaling, disruption
    budget, monitoring, and Redis for --state."""
    from skylift.export.kubernetes import KubernetesExporter
    from skylift.export.kubernetes_scaling import PROMETHEUS_URL

    if prometheus_url is not None:
        if not monitoring:
            fail("--prometheus-url goes with monitoring: leave out --no-monitoring")
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", prometheus_url):
            fail(f"--prometheus-url {prometheus_url!r} is not an http(s) URL")
    model = _load(app, template, name)
    where = Path(out) if out is not None else model.code_dir / "k8s"
    exporter = KubernetesExporter(
        image,
        namespace,
        replicas,
        max_replicas,
        state=state,
        monitoring=monitoring,
        prometheus=prometheus_url or PROMETHEUS_URL,
    )
    _export(model, exporter, where, dry_run)
    if not dry_run:
        click.echo(f"apply them with: kubectl apply -f {where}", err=True)


@export.command(epilog=APP_HELP)
@click.argument("app", required=False)
@_template
@_name
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="The template to write (default: template.yaml in the app's folder).",
)
@_dry_run
def sam(
    app: str | None, template: str | None, name: str | None, out: str | None, dry_run: bool
) -> None:
    """An AWS SAM template for APP's functions, triggers, queues and buckets."""
    from skylift.export.sam import SamExporter

    model = _load(app, template, name)
    where = Path(out) if out is not None else model.code_dir / "template.yaml"
    if where.resolve() == (model.code_dir / model.target).resolve():
        fail(f"{where} is the template being exported: pass --out with another file")
    _export(model, SamExporter(where), where.parent, dry_run)
    if not dry_run:
        click.echo(f"deploy it with: sam build -t {where} && sam deploy --guided", err=True)


@export.command(epilog=APP_HELP)
@click.argument("app", required=False)
@_template
@_name
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="The folder for rules.yml and alertmanager.yml (default: prometheus/ in the app's).",
)
@_dry_run
def prometheus(
    app: str | None, template: str | None, name: str | None, out: str | None, dry_run: bool
) -> None:
    """Prometheus rules (2 and 3 sigma) and Alertmanager routing from APP's skylift.toml."""
    from skylift.export.prometheus import PrometheusExporter

    model = _load(app, template, name)
    where = Path(out) if out is not None else model.code_dir / "prometheus"
    _export(model, PrometheusExporter(), where, dry_run)
    if not dry_run:
        click.echo(f"check them with: promtool check rules {where / 'rules.yml'}", err=True)


COMMANDS = (export,)
