"""The front's limits, and the seams between its layers as protocols, so that each layer
imports only the ones below it: `front.Front` (the server) makes `connection.Connection`s,
which make request cycles (`front_request.py`, `front_function.py`, `front_asgi.py`).

- `Server`: what a connection and its cycles use of the server;
- `Link`: what a cycle uses of its connection;
- `Cycle`: what a connection is handed back when a cycle has answered;
- `Ready`: a complete function request the server starts (`Server.run_soon`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from skylift.asgi_types import Asgi
    from skylift.gateway.asgi import Gateway
    from skylift.gateway.front_decided import Decided

MAX_HEAD = 10_240  # API Gateway's limit on a request's headers
HEAD_TIMEOUT = 10.0
KEEP_ALIVE = 5.0
SHUTDOWN_TIMEOUT = 2.0  # clients' long polls (SQS waits up to 20 s) must not hold a stop


@dataclass(frozen=True)
class Limits:
    max_head: int = MAX_HEAD
    head_timeout: float = HEAD_TIMEOUT
    keep_alive: float = KEEP_ALIVE
    max_connections: int = 1024
    shutdown_timeout: float = SHUTDOWN_TIMEOUT


ConnT = TypeVar("ConnT")


class Server(Protocol[ConnT]):
    """The server as its connections (of type `ConnT`) and their cycles see it."""

    @property
    def gateway(self) -> Gateway: ...
    @property
    def app(self) -> Asgi: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def stopping(self) -> bool: ...
    @property
    def date(self) -> bytes: ...
    @property
    def connections(self) -> set[ConnT]: ...
    @property
    def decided(self) -> Decided: ...
    def record(self, route: str, method: str, status: int, started: float) -> None: ...
    def refuse(self) -> None: ...
    def run_soon(self, cycle: Ready) -> None: ...


class Ready(Protocol):
    """A complete function request, which the server starts after the loop's reads."""

    def go(self) -> None: ...


class Cycle(Protocol):
    """One request's answer in progress, as its connection sees it when it is done."""

    @property
    def keep_alive(self) -> bool: ...


class Link(Protocol):
    """A request cycle's connection: where it writes, and whom it tells of its progress."""

    @property
    def front(self) -> Server[Any]: ...
    @property
    def parser(self) -> Any: ...  # httptools.HttpRequestParser (untyped)
    @property
    def client(self) -> tuple[str, int] | None: ...
    @property
    def current(self) -> object: ...  # the cycle answering now
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def body_buffered(self, size: int) -> None: ...
    def continued(self) -> None: ...
    def finish(self, cycle: Cycle) -> None: ...
    def close(self) -> None: ...
