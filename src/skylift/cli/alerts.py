"""`skylift alerts`: list open and recent alerts, ack or resolve one.

It opens `.skylift/alerts.db` directly, so it works with or without `skylift up`
running; a running server sees an ack at its next round (one `interval`), and an
acked alert is never escalated.
"""

from __future__ import annotations

import getpass
import time
from datetime import UTC, datetime

import click
import orjson

from skylift import server_file
from skylift.cli.common import fail, state_dir
from skylift.observe.alerts_actions import taken
from skylift.observe.alerts_store import FILE, RESOLVED, Alert, AlertStore

RECENT = 86400.0  # resolved alerts listed for a day


def _store(app: str | None, template: str | None) -> AlertStore | None:
    state = state_dir(app, template)
    return AlertStore(state) if (state / FILE).exists() else None


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(alerts: list[Alert]) -> str:
    header = (
        "ID",
        "STATE",
        "SEVERITY",
        "SUBJECT",
        "METRIC",
        "VALUE",
        "SIGMA",
        "OPENED",
        "PAGED",
        "ESCALATED",
        "ACKED BY",
    )
    rows = [
        (
            str(a.id),
            a.state,
            a.severity,
            f"{a.kind} {a.subject}",
            a.metric,
            f"{a.value:.4g}",
            f"{a.sigma:.1f}",
            _when(a.opened_at),
            a.paged or "-",
            a.escalated_to or "-",
            a.acked_by or "-",
        )
        for a in alerts
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


_app = click.option("--app", "-a", "app", default=None, help="The app (default: this folder).")
_template = click.option(
    "--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template."
)


@click.group(invoke_without_command=True)
@_app
@_template
@click.option("--json", "as_json", is_flag=True, help="The alerts and their deliveries as JSON.")
@click.pass_context
def alerts(ctx: click.Context, app: str | None, template: str | None, as_json: bool) -> None:
    """Open alerts and those resolved in the last day (policy: [alerts] in skylift.toml)."""
    if ctx.invoked_subcommand is not None:
        ctx.ensure_object(dict)
        ctx.obj.update(app=app, template=template)
        return
    store = _store(app, template)
    found = store.recent(time.time() - RECENT) if store is not None else []
    if as_json:
        entries = [
            {
                **a.to_dict(),
                "deliveries": [d.to_dict() for d in store.deliveries(a.id)],
                "actions": [t.to_dict() for t in taken(store, a.id)],
            }
            for a in found
            if store is not None
        ]
        click.echo(orjson.dumps(entries).decode())
        return
    if not found:
        click.echo("no open or recent alerts", err=True)
        return
    click.echo(_table(found))


def _change(ctx: click.Context, alert_id: int, app: str | None) -> tuple[AlertStore, Alert]:
    given = ctx.obj or {}
    store = _store(app or given.get("app"), given.get("template"))
    alert = store.get(alert_id) if store is not None else None
    if store is None or alert is None:
        fail(f"there is no alert {alert_id}; `skylift alerts` lists them")
    if alert.state == RESOLVED:
        fail(f"alert {alert_id} was resolved already ({_when(alert.resolved_at)})")
    return store, alert


@alerts.command()
@click.argument("alert_id", metavar="ID", type=int)
@click.argument("app", required=False)
@click.option("--by", default=None, help="Who acknowledges (default: your user name).")
@click.pass_context
def ack(ctx: click.Context, alert_id: int, app: str | None, by: str | None) -> None:
    """Acknowledge alert ID: you are on it, so it is not escalated to the backup."""
    store, alert = _change(ctx, alert_id, app)
    if alert.state != "open":
        fail(f"alert {alert_id} was acknowledged already, by {alert.acked_by}")
    changed = store.ack(alert_id, by or getpass.getuser())
    assert changed is not None
    if changed.state != "acked":
        fail(f"alert {alert_id} is {changed.state} now; nothing changed")
    escalated = f" (escalated to {changed.escalated_to} already)" if changed.escalated_at else ""
    click.echo(f"alert {alert_id} acknowledged by {changed.acked_by}{escalated}")


@alerts.command()
@click.argument("alert_id", metavar="ID", type=int)
@click.argument("app", required=False)
@click.option("--by", default=None, help="Who resolves (default: your user name).")
@click.pass_context
def resolve(ctx: click.Context, alert_id: int, app: str | None, by: str | None) -> None:
    """Resolve alert ID; its series then stays quiet for the policy's cool-down."""
    store, _ = _change(ctx, alert_id, app)
    changed = store.resolve(alert_id, by or getpass.getuser())
    assert changed is not None
    click.echo(f"alert {alert_id} resolved by {changed.resolved_by}")


@alerts.command()
@click.argument("alert_id", metavar="ID", type=int)
@click.argument("app", required=False)
@click.pass_context
def undo(ctx: click.Context, alert_id: int, app: str | None) -> None:
    """Undo what alert ID's actions changed (scale, rollback, drain) on the running server."""
    import urllib.error
    import urllib.request

    given = ctx.obj or {}
    state = state_dir(app or given.get("app"), given.get("template"))
    url = server_file.find(state)
    if url is None:
        fail(
            f"no server is running for {state.parent}: an action's change lives in the "
            "server that took it, and ended with it"
        )
    request = urllib.request.Request(
        f"{url}/_skylift/alerts/{alert_id}/undo", data=b"{}", method="POST"
    )
    token = server_file.token(state)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            undone = orjson.loads(answer.read())["undone"]
    except urllib.error.HTTPError as exc:
        fail(str(orjson.loads(exc.read() or b"{}").get("message", exc)))
    except urllib.error.URLError as exc:
        fail(f"cannot reach the server at {url}: {exc.reason}")
    if not undone:
        click.echo(f"alert {alert_id} has no action left to undo")
    for action in undone:
        click.echo(f"alert {alert_id}: {action['summary']}")


COMMANDS = [alerts]
