"""Queues kept in Redis (`--state redis://...`): every key under skylift's prefix, taken in
one Lua script, so the dump is one moment of Redis (no message half moved between two
keys), and written back with RESTORE.

The script blocks Redis while it runs (about 1 s per few hundred thousand keys): other
nodes' queue calls wait for it. Values are Redis's own DUMP format, which RESTORE accepts
on the same or a newer Redis version.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from skylift.backup.archive import BackupError, Manifest, Writer, members
from skylift.queues.redis import DEFAULT_PREFIX
from skylift.queues.redis_url import split_url

MEMBER = "redis/keys.json"
_DUMP = """
local out = {}
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
  out[#out + 1] = key
  out[#out + 1] = redis.call('PTTL', key)
  out[#out + 1] = redis.call('DUMP', key)
end
return out
"""


def _client(url: str) -> tuple[Redis, str]:
    base, prefix = split_url(url)
    return Redis.from_url(base, socket_timeout=60), prefix or DEFAULT_PREFIX


def _pattern(prefix: str) -> str:
    # KEYS takes a glob: the prefix's own glob characters are literal.
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"


def add_redis(writer: Writer, url: str) -> None:
    """Dump every key under the URL's prefix into the archive."""
    client, prefix = _client(url)
    try:
        queues = int(client.hlen(prefix + "queues"))  # for the summary only
        flat = client.eval(_DUMP, 0, _pattern(prefix))
    except RedisError as exc:
        raise BackupError(f"cannot dump the queues from Redis: {exc}") from None
    finally:
        client.close()
    entries: list[dict[str, Any]] = []
    for i in range(0, len(flat), 3):
        key, ttl, dumped = flat[i : i + 3]
        entries.append(
            {
                "key": base64.b64encode(key).decode(),
                "ttl": max(int(ttl), 0),  # -1: no expiry
                "dump": base64.b64encode(dumped).decode(),
            }
        )
    writer.add_bytes(MEMBER, json.dumps(entries).encode())
    writer.manifest.redis = {"prefix": prefix, "keys": len(entries)}
    message = f"{prefix}m:".encode()
    writer.manifest.summary["messages"] = sum(
        1 for e in entries if base64.b64decode(e["key"]).startswith(message)
    )
    writer.manifest.summary["queues"] = queues


def check_empty(url: str, prefix: str) -> None:
    """Refuse a Redis that already holds keys under `prefix`: a restore never mixes.

    The keys go back under the prefix they were dumped from, which the URL must name.
    """
    client, named = _client(url)
    if named != prefix:
        client.close()
        raise BackupError(
            f"the backup's queues were kept under the prefix {prefix!r}, and {url} names "
            f"{named!r}: add ?prefix={prefix} to the URL (and to `skylift up --state`)"
        )
    try:
        found = next(iter(client.scan_iter(match=_pattern(prefix), count=1000)), None)
    except RedisError as exc:
        raise BackupError(f"cannot reach Redis to restore the queues: {exc}") from None
    finally:
        client.close()
    if found is not None:
        raise BackupError(
            f"Redis at {url} already holds keys under {prefix!r}: restore into an empty "
            "database or prefix"
        )


def restore_redis(archive: Path, manifest: Manifest, url: str) -> None:
    """RESTORE every dumped key; keys written so far are removed if one fails."""
    entries: list[dict[str, Any]] = []
    for name, reader in members(archive):
        if name == MEMBER:
            entries = json.loads(reader.read())
    client, _ = _client(url)
    done: list[bytes] = []
    try:
        for entry in entries:
            key = base64.b64decode(entry["key"])
            client.restore(key, int(entry["ttl"]), base64.b64decode(entry["dump"]))
            done.append(key)
    except (RedisError, ResponseError) as exc:
        if done:
            client.delete(*done)
        raise BackupError(f"cannot restore the queues into Redis: {exc}") from None
    finally:
        client.close()
