"""CPU per encoded result: the worker's `ResultEncoder` (simplejson's C encoder made once,
awslambdaric's bytes) against simplejson's `JSONEncoder.encode` (which makes it per call,
as awslambdaric does) and the stdlib's C encoder made once (what skylift used before; its
bytes differ from the runtime's for Decimals, namedtuples, bytes and python3.12's text).

    python bench/result_encode_bench.py --rounds 10

The result is examples/make-change's API Gateway response. CPU time is the thread's own
(`time.thread_time_ns`), so a loaded machine slows it less than wall-clock time; the
variants run interleaved, in turn first, and the median and range are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from json import encoder as stdlib
from typing import Any

from skylift.runtime.results import ResultEncoder

RESULT = {
    "statusCode": 200,
    "headers": {"Content-Type": "application/json"},
    "body": '{"res": [{"7": "quarters"}, {"1": "dimes"}, {"4": "pennies"}]}',
}


def stdlib_made_once() -> Callable[[Any], bytes]:
    default = json.JSONEncoder().default
    made = stdlib.c_make_encoder(  # type: ignore[attr-defined]  # private, as results.py had
        {}, default, stdlib.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(made(value, 0)).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--encodes", type=int, default=20000)
    args = parser.parse_args()
    encoder = ResultEncoder("python3.11")
    variants: dict[str, Callable[[Any], bytes]] = {
        "ResultEncoder.encode (made once)": encoder.encode,
        "simplejson JSONEncoder.encode (per call)": lambda v: encoder.json.encode(v).encode(),
        "stdlib C encoder made once (other bytes)": stdlib_made_once(),
    }
    assert variants["ResultEncoder.encode (made once)"](RESULT) == json.dumps(RESULT).encode()
    spent: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        order = list(variants.items())
        for name, encode in order[round_ % len(order) :] + order[: round_ % len(order)]:
            began = time.thread_time_ns()
            for _ in range(args.encodes):
                encode(RESULT)
            spent[name].append((time.thread_time_ns() - began) / args.encodes / 1000)
    for name, times in spent.items():
        print(
            f"{name:42} median {statistics.median(times):.2f} µs "
            f"({min(times):.2f}-{max(times):.2f}), {len(times)} rounds"
        )


if __name__ == "__main__":
    main()
