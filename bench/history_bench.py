"""Request-path cost of keeping each invocation's event and result with its log.

`skylift up`'s collector (`observe/collect.py`: in C where it was built) is timed as the
server uses it, with the invocation's event kept (what `skylift replay` needs) and
without it (the log alone): each call packs the invocation's row into its instance's
stream (32 instances in turn), and every 1,024 calls the batch is taken and the log
store frames it for its writer (not started: only the loop's side is timed). A typical
API Gateway event (~1.3 KB) is kept whole; a 300 KiB event is only handed to the writer
thread, which hashes it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import orjson
from report import write_section

from skylift.engine.instance import InvocationResult
from skylift.observe import collect
from skylift.observe.intake import MAX_BATCH
from skylift.observe.logs_store import LogStore
from skylift.observe.metrics import DURATION_BUCKETS
from skylift.spec import FunctionSpec

NUMBER = 20_000
ROUNDS = 9
EVENT = orjson.dumps(
    {
        "version": "2.0",
        "routeKey": "POST /orders",
        "rawPath": "/orders",
        "rawQueryString": "",
        "headers": {f"x-header-{i}": "v" * 40 for i in range(12)},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "http": {"method": "POST", "path": "/orders", "protocol": "HTTP/1.1"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "time": "05/Dec/2026:21:00:00 +0000",
        },
        "body": '{"item": "book", "quantity": 2}',
        "isBase64Encoded": False,
    }
)


class Instance:
    """Stands for an instance: its log stream is keyed by it."""


def per_call_us(
    store: LogStore, spec: FunctionSpec, results: list[InvocationResult]
) -> tuple[list[float], collect.Collector]:
    """Best time per invocation of each result through the collector; rounds alternate
    between them, so a neighbour's load on a shared machine weighs on all alike. A large
    result gets fewer calls a round: the store holds at most 256 MiB of pending events
    (then drops them)."""
    collector = collect.make(
        store.open, _nothing, _nothing, DURATION_BUCKETS, max_batch=1 << 30, max_bytes=1 << 62
    )
    instances = [Instance() for _ in range(32)]
    best = [float("inf")] * len(results)
    for _ in range(ROUNDS):
        for i, result in enumerate(results):
            number = min(NUMBER, 200 * 1024 * 1024 // max(1, len(result.event or b"")))
            started = time.perf_counter()
            for n in range(number):
                collector(spec, result, instances[n % 32])
                if n % MAX_BATCH == MAX_BATCH - 1 or n == number - 1:
                    taken = collector.take()
                    assert taken is not None
                    store.seal(taken[2], taken[3])
            best[i] = min(best[i], (time.perf_counter() - started) / number * 1e6)
            # What the writer thread would take, taken unwritten (past 100,000 pending
            # invocations the store drops them, which would be timed instead).
            store._pending.clear()
            store._taken, store._taken_bytes = store._added, store._added_bytes
            assert not store.dropped
    return best, collector


def _nothing() -> None:
    """The intake's timer and drain: the bench takes the batches itself."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    spec = FunctionSpec(name="f", handler="app.f", code_dir=".")
    output = b"processed order 42\n"
    with tempfile.TemporaryDirectory() as directory:
        store = LogStore(Path(directory))  # not started: only the request path is timed

        def result(event: bytes | None) -> InvocationResult:
            return InvocationResult("r", b'{"statusCode": 201}', None, output, 2.0, event=event)

        big = orjson.dumps({"blob": "x" * (300 * 1024)})
        (without, typical, large), collector = per_call_us(
            store, spec, [result(None), result(EVENT), result(big)]
        )
        which = "Python" if isinstance(collector, collect.PyCollector) else "C"
        store(spec, result(big), None)
        started = time.perf_counter()
        store.flush()  # the writer thread's share: the digest and the write
        thread_ms = (time.perf_counter() - started) * 1000
    text = "\n".join(
        [
            "## Invocation history: request-path cost of keeping each event and result",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            "cores. Command: `make bench` (`python bench/history_bench.py`): the best of "
            f"{ROUNDS} rounds of {NUMBER} invocations (of the 300 KiB event, fewer: the store "
            f"holds at most 256 MiB pending) through `skylift up`'s collector (in {which}), "
            "each 1,024 taken and framed by the log store, rounds alternating between the "
            "three.",
            "",
            "| stored per invocation | µs per invocation |",
            "|---|---:|",
            f"| log only (no event kept) | {without:.2f} |",
            f"| log + a {len(EVENT)}-byte API Gateway event and the result | {typical:.2f} |",
            f"| log + a {len(big) // 1024} KiB event (handed to the writer thread) | {large:.2f} |",
            "",
            f"The writer thread's share for the 300 KiB event (SHA-256 digest and write): "
            f"{thread_ms:.2f} ms, off the request path.",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "history", text)


if __name__ == "__main__":
    main()
