# The C collector (_collect.c); collect.py documents it and holds its Python twin.
from collections.abc import Callable, Sequence

from skylift.observe.collect import OpenStream, SlowRow, Taken
from skylift.spec import FunctionSpec

class Collector:
    def __init__(
        self,
        open_stream: OpenStream | None,
        slow_row: SlowRow,
        arm: Callable[[], None],
        full: Callable[[], None],
        bounds: Sequence[float],
        mark: bytes,
        max_batch: int,
        max_bytes: int,
        limit: int,
    ) -> None: ...
    @property
    def pending(self) -> int: ...
    def __call__(
        self,
        spec: FunctionSpec,
        result: object,
        instance: object = None,
        ended_ns: int | None = None,
    ) -> None: ...
    def take(self) -> Taken | None: ...
