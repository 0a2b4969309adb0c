"""ListObjectsV2 paging, for any backend that can walk its keys in UTF-8 byte order.

A backend supplies two things: ``keys(prefix, cursor)``, yielding ``(key, handle)`` for
each key that starts with ``prefix`` and sorts after ``cursor.after``, in UTF-8 byte
order; and ``info(key, handle)``, the key's ``ObjectInfo`` (``NoSuchKey`` if it vanished
meanwhile). ``list_page`` does the rest as S3 does: the continuation token or
start-after, common prefixes, ``max-keys`` and the next token.

The backend should re-read ``cursor.after`` as it goes: after a common prefix the cursor
jumps past every key in it, so a tree walk can skip that whole subtree.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import TypeVar

from skylift.storage.errors import InvalidArgument, NoSuchKey
from skylift.storage.protocol import MAX_LIST_KEYS, ListResult, ObjectInfo

H = TypeVar("H")

_TOKEN_VERSION = "1"


class Cursor:
    """Where a listing stands: keys at or before ``after`` (UTF-8 bytes) are skipped.

    ``list_page`` moves it past a whole common prefix at once.
    """

    def __init__(self, after: bytes) -> None:
        self.after = after


def list_page(
    bucket: str,
    keys: Callable[[str, Cursor], Iterator[tuple[str, H]]],
    info: Callable[[str, H], ObjectInfo],
    *,
    prefix: str,
    delimiter: str | None,
    max_keys: int,
    continuation_token: str | None,
    start_after: str | None,
) -> ListResult:
    """One ListObjectsV2 page; the arguments are ``ObjectStore.list_objects``'s."""
    if max_keys < 0:
        raise InvalidArgument(
            f"max-keys must be 0 or more, got {max_keys}. Ask for 1 to 1000 keys a page.",
            argument="max-keys",
            value=str(max_keys),
            bucket=bucket,
        )
    # The token wins over start-after, as in ListObjectsV2.
    if continuation_token is not None:
        start = read_token(bucket, continuation_token)
    else:
        start = start_after or ""
    start_bytes = _utf8(bucket, "start-after", start)
    _utf8(bucket, "prefix", prefix)
    limit = min(max_keys, MAX_LIST_KEYS)
    if limit == 0:
        return ListResult([], [], False, None)
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    last: str | None = None
    truncated = False
    cursor = Cursor(start_bytes)
    for key, handle in keys(prefix, cursor):
        common = common_prefix(key, prefix, delimiter)
        if common is not None:
            common_bytes = common.encode()
            cursor.after = common_bytes + b"\xff"  # no UTF-8 byte is 0xff: skips the group
            # A common prefix at or before the start was the last item of an earlier
            # page; S3 does not repeat it.
            if common_bytes <= start_bytes:
                continue
        if len(objects) + len(prefixes) == limit:
            truncated = True
            break
        if common is not None:
            prefixes.append(common)
            last = common
            continue
        try:
            objects.append(info(key, handle))
        except NoSuchKey:
            continue  # deleted while we listed
        last = key
    next_token = make_token(last) if truncated and last is not None else None
    return ListResult(objects, prefixes, truncated, next_token)


def common_prefix(key: str, prefix: str, delimiter: str | None) -> str | None:
    """The common prefix ``key`` rolls up into, if the delimiter follows the prefix."""
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


def make_token(last: str) -> str:
    """The continuation token of a page whose last key (or common prefix) is ``last``."""
    return _TOKEN_VERSION + base64.urlsafe_b64encode(last.encode()).decode()


def read_token(bucket: str, token: str) -> str:
    """The last key of the page that ``token`` continues; ``InvalidArgument`` if forged."""
    try:
        if not token.startswith(_TOKEN_VERSION):
            raise ValueError(token)
        return base64.b64decode(token[1:], altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error):
        raise InvalidArgument(
            "The continuation token provided is incorrect. Pass back the "
            "NextContinuationToken of the previous page unchanged.",
            argument="continuation-token",
            value=token,
            bucket=bucket,
        ) from None


def _utf8(bucket: str, argument: str, value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{argument} must be valid UTF-8 text, got {value!r}.",
            argument=argument,
            value=value.encode("utf-8", "replace").decode(),
            bucket=bucket,
        ) from None
