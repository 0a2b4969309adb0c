"""Who may drive a `skylift up` server: the Host and Origin checks, and the token (or
SigV4 keys) that guard the control and Lambda APIs when others may reach the port."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from skylift.cli.common import fail
from skylift.errors import SkyliftError

if TYPE_CHECKING:
    from skylift.gateway.guard import Guard


def guard(
    host: str,
    allow_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    credentials: str | None = None,
) -> Guard:
    """Who may drive the server. A token guards the control and Lambda APIs whenever
    anyone beyond this machine may reach them: listening beyond loopback, a name given
    with --allow-host (a reverse proxy in front), SKYLIFT_TOKEN set, or --credentials
    (whose keys then sign every AWS API request)."""
    import os
    import secrets

    from skylift.gateway import credentials as credentials_file
    from skylift.gateway.guard import Guard, loopback

    keys = None
    if credentials is not None:
        try:
            keys = credentials_file.load(credentials)
        except SkyliftError as exc:
            fail(str(exc))
    chosen = os.environ.get("SKYLIFT_TOKEN") or None
    exposed = not loopback(host)
    if not (exposed or allow_hosts or chosen or keys):
        return Guard.build(host, allow_hosts, cors_origins, None)
    token = chosen or secrets.token_urlsafe(24)
    shown = "in SKYLIFT_TOKEN" if chosen else f"{token} (choose one with SKYLIFT_TOKEN)"
    if keys is not None:
        count = len(keys)
        click.echo(
            f"skylift: the SQS, S3 and Lambda APIs need a SigV4 signature by one of the "
            f"{count} key{'s' * (count != 1)} in {credentials}; the control API needs the token "
            f"{shown}.",
            err=True,
        )
    elif exposed:
        click.echo(
            f"skylift: warning: listening on {host} exposes this server beyond this machine: "
            "the app's routes and the SQS and S3 APIs to anyone who reaches the port; the "
            f"control and Lambda APIs need the token {shown}, sent as `Authorization: Bearer "
            "TOKEN` or as the AWS access key id. See docs/security.md.",
            err=True,
        )
    else:
        click.echo(
            f"skylift: the control and Lambda APIs need the token {shown}, sent as "
            "`Authorization: Bearer TOKEN` or as the AWS access key id.",
            err=True,
        )
    if keys is not None and exposed:
        click.echo(
            f"skylift: warning: listening on {host}: the app's own routes are open to anyone "
            "who reaches the port. See docs/security.md.",
            err=True,
        )
    return Guard.build(host, allow_hosts, cors_origins, token, keys)
