"""ListObjectsV2 pages of ``S3Store``: the endpoint's own listing for the keys (in UTF-8
byte order, as S3 lists), ``storage.listing`` for skylift's paging rules, and a HeadObject
per listed key for its metadata, several at once. Keys under skylift's staging prefix
(``s3_staging``) are never listed.

A key that rolls up into a common prefix is never headed, and no more keys are headed
than the page can hold (plus one, to know it is truncated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from skylift.storage.listing import Cursor, common_prefix, list_page
from skylift.storage.protocol import MAX_LIST_KEYS, ListResult, ObjectInfo
from skylift.storage.s3_endpoint import Endpoint
from skylift.storage.s3_staging import hidden

Head = Callable[[str], ObjectInfo]


def list_objects(
    endpoint: Endpoint,
    pool: ThreadPoolExecutor,
    bucket: str,
    external: str,
    head: Head,
    *,
    prefix: str,
    delimiter: str | None,
    max_keys: int,
    continuation_token: str | None,
    start_after: str | None,
) -> ListResult:
    """One page, as ``ObjectStore.list_objects``; ``external`` is the endpoint's bucket."""
    if max_keys == 0:
        endpoint.call("head_bucket", bucket=bucket, Bucket=external)
    budget = [min(max_keys, MAX_LIST_KEYS) + 1]
    pending: list[Future[ObjectInfo]] = []

    def keys(wanted: str, cursor: Cursor) -> Iterator[tuple[str, Future[ObjectInfo] | None]]:
        while True:
            params: dict[str, Any] = {"Bucket": external, "Prefix": wanted, "MaxKeys": 1000}
            start = _start_after(cursor.after)
            if start:
                params["StartAfter"] = start
            page = endpoint.call("list_objects_v2", bucket=bucket, **params)
            contents = [str(item["Key"]) for item in page.get("Contents", [])]
            ahead: list[tuple[str, Future[ObjectInfo] | None]] = []
            for key in contents:
                if key.encode() <= cursor.after or hidden(key):
                    continue
                future = None
                if budget[0] > 0 and common_prefix(key, wanted, delimiter) is None:
                    budget[0] -= 1
                    future = pool.submit(head, key)
                    pending.append(future)
                ahead.append((key, future))
            for key, future in ahead:
                if key.encode() > cursor.after:  # not rolled up into a prefix since
                    yield key, future
            if not page.get("IsTruncated") or not contents:
                return
            cursor.after = max(cursor.after, contents[-1].encode())

    def info(key: str, future: Future[ObjectInfo] | None) -> ObjectInfo:
        return head(key) if future is None else future.result()

    try:
        return list_page(
            bucket,
            keys,
            info,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            continuation_token=continuation_token,
            start_after=start_after,
        )
    finally:
        for future in pending:
            future.cancel()  # headed for a page that ended first


def _start_after(after: bytes) -> str:
    # Past a common prefix the cursor ends in 0xff, which is no UTF-8: U+10FFFF is the
    # greatest character, so the endpoint lists from just past the prefix's keys.
    if after[-1:] == b"\xff":
        return after.rstrip(b"\xff").decode() + "\U0010ffff"
    return after.decode()
