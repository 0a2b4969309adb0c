"""State URLs (`--state redis://host:port/db`): checked at startup, shown without secrets."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from skylift.errors import SkyliftError

SCHEMES = ("redis", "rediss", "unix")


def split_url(url: str) -> tuple[str, str | None]:
    """A state URL without skylift's own ``prefix`` parameter, and that prefix.

    Example: ``split_url("redis://h:6379/0?prefix=app1:")`` is
    ``("redis://h:6379/0", "app1:")``.
    """
    # Not urlsplit().geturl(): it turns unix:///path into unix:/path.
    base, _, query = url.partition("?")
    parameters = parse_qs(query, keep_blank_values=True)
    prefixes = parameters.pop("prefix", [])
    rest = urlencode(parameters, doseq=True)
    return f"{base}?{rest}" if rest else base, prefixes[0] if prefixes else None


def shown(url: str) -> str:
    """The URL with any password replaced, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def check(url: str) -> str:
    """Raise SkyliftError unless ``url`` is a Redis URL that answers a PING; return it."""
    import redis

    if urlsplit(url).scheme not in SCHEMES:
        raise SkyliftError(
            f"--state {url!r} is not a Redis URL: use redis://HOST:PORT/DB (or rediss:// for "
            "TLS, unix:///path/to/socket); leave --state out to keep state in .skylift/"
        )
    plain, _ = split_url(url)
    try:
        client = redis.Redis.from_url(plain, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as exc:
        raise SkyliftError(
            f"cannot reach Redis at {shown(url)} ({exc}): start redis-server there, or "
            "correct --state"
        ) from None
    return url
