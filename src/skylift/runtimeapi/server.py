"""The Lambda Runtime API (2018-06-01) for one instance, served on 127.0.0.1.

The supervisor `submit`s an invocation; the runtime long-polls `GET .../invocation/next`
for it and answers on `POST .../invocation/{id}/response` or `.../error`; a runtime whose
init fails posts `.../init/error` instead. The state machine and its errors follow AWS's
RAPID as published in aws-lambda-runtime-interface-emulator (lambda/core/states.go,
lambda/rapi/handler/*.go, lambda/rapi/rendering/rendering.go):

- a transition the runtime's state does not allow (a response before any invocation, a
  second response to one, `/next` after an init error, an init error after `/next`
  handed out an invocation) -> 403 `{"errorMessage": "State transition from
  RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State
  transition is not allowed", "errorType": "InvalidStateTransition"}` (the states: Started,
  InitError, Ready, RuntimeResponseSentState);
- an answer for another request id than the one in flight -> 400 `{"errorMessage":
  "Invalid request ID", "errorType": "InvalidRequestID"}`;
- a response over 6 MB (+100 bytes, as Lambda counts) -> 413 `{"errorMessage": "Exceeded
  maximum allowed payload size (6291556 bytes).", "errorType": "RequestEntityTooLarge"}`,
  and the invocation fails with `Function.ResponseSizeTooLarge`;
- success -> 202 `{"status": "OK"}`.

As in RAPID, a `/next` while an invocation is in flight hands that invocation out again (a
runtime that lost its connection mid-poll can recover), and the runtime's state moves to
"Ready" only when an invocation is handed out.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import time
from dataclasses import dataclass

import orjson

from skylift.engine.instance import MAX_RESPONSE
from skylift.runtimeapi.connection import Connection, Reply, Request, Response
from skylift.runtimeapi.listener import Listener

PREFIX = "/2018-06-01/runtime/"


@dataclass(frozen=True)
class Invocation:
    """What the runtime receives from `/next`: the event and its Lambda-Runtime-* headers."""

    request_id: str
    event: bytes
    function_arn: str
    timeout: float  # seconds; the deadline header is set from it when the runtime takes it
    trace_id: str
    client_context: str | None = None  # JSON text, as the header carries it
    cognito_identity: str | None = None  # JSON text
    tenant_id: str | None = None  # TenancyConfig PER_TENANT: the invocation's tenant


@dataclass(frozen=True)
class Outcome:
    """What the runtime answered: a result, an invocation error, or an init error."""

    payload: bytes
    error_type: str | None = None  # None for a result
    init_error: bool = False


@dataclass(eq=False)
class Job:
    """One submitted invocation, as the supervisor follows it."""

    invocation: Invocation
    delivered: asyncio.Future[None]  # done when the runtime has taken it from `/next`
    outcome: asyncio.Future[Outcome]
    delivered_at: float = 0.0  # time.monotonic()
    deadline_ms: int = 0  # epoch milliseconds


class State(enum.Enum):
    """The runtime's states, named as RAPID names them in its error messages."""

    STARTED = "Started"
    INIT_ERROR = "InitError"
    READY = "Ready"  # an invocation is with the runtime
    RESPONSE_SENT = "RuntimeResponseSentState"


class Busy(Exception):
    """Raised by `submit` when an invocation is already queued or in flight."""


def _error(status: int, error_type: str, message: str) -> Response:
    return Response(status, orjson.dumps({"errorMessage": message, "errorType": error_type}))


def _not_allowed(state: State, target: str) -> Response:
    return _error(
        403,
        "InvalidStateTransition",
        f"State transition from {state.value} to {target} failed for runtime. "
        "Error: State transition is not allowed",
    )


ACCEPTED = Response(202, b'{"status":"OK"}')
INVALID_REQUEST_ID = _error(400, "InvalidRequestID", "Invalid request ID")
TOO_LARGE = _error(
    413,
    "RequestEntityTooLarge",
    f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
)
NOT_FOUND = Response(404, b"404 page not found\n", content_type="text/plain; charset=utf-8")


def oversized(size: int, init_error: bool = False) -> Outcome:
    """The invocation's error when the runtime's answer passes Lambda's 6 MB limit."""
    message = (
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
        f"({MAX_RESPONSE} bytes)."
    )
    payload = orjson.dumps({"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"})
    return Outcome(payload, "Function.ResponseSizeTooLarge", init_error)


def _error_outcome(request: Request, init_error: bool = False) -> Outcome:
    error_type = request.headers.get("lambda-runtime-function-error-type") or None
    payload = request.body
    if not payload.strip():
        # The Invoke API always answers an error with a JSON body; give it one.
        fallback = error_type or "Runtime.Unknown"
        payload = orjson.dumps({"errorMessage": "", "errorType": fallback})
    return Outcome(payload, error_type or "Unhandled", init_error)


class RuntimeApiServer:
    """The Runtime API of one instance. Start it in the supervisor's loop.

    >>> server = await RuntimeApiServer.start()  # doctest: +SKIP
    >>> env["AWS_LAMBDA_RUNTIME_API"] = server.address  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.state = State.STARTED
        # time.monotonic() of the first `/next` or `/init/error`: the end of the init phase
        self.init_ended_at: float | None = None
        self.init_error: Outcome | None = None
        self._queued: Job | None = None
        self._current: Job | None = None
        self._polls: collections.deque[asyncio.Future[Response]] = collections.deque()
        self._listener: Listener | None = None
        self.port = 0

    @classmethod
    async def start(cls, host: str = "127.0.0.1") -> RuntimeApiServer:
        self = cls()
        # The body limit leaves room for a response just over 6 MB, so it can be refused
        # with the size in the message.
        self._listener = Listener(lambda live: Connection(self.route, live, MAX_RESPONSE), host)
        self.port = self._listener.port
        return self

    @property
    def address(self) -> str:
        """The value of AWS_LAMBDA_RUNTIME_API."""
        return f"127.0.0.1:{self.port}"

    def submit(self, invocation: Invocation) -> Job:
        """Queue `invocation` for the runtime's next `/next`; follow it through the Job."""
        if self._queued is not None or self._current is not None:
            raise Busy("the runtime is already busy with an invocation")
        loop = asyncio.get_running_loop()
        job = Job(invocation, loop.create_future(), loop.create_future())
        if self.init_error is not None:
            job.outcome.set_result(self.init_error)
            return job
        while self._polls:
            poll = self._polls.popleft()
            if not poll.done():  # a poll whose connection closed is cancelled
                poll.set_result(self._deliver(job))
                return job
        self._queued = job
        return job

    def abandon(self) -> None:
        """Forget the queued or in-flight invocation (its instance is being killed)."""
        for job in (self._queued, self._current):
            if job is not None and not job.outcome.done():
                job.outcome.cancel()
        self._queued = self._current = None

    def close(self) -> None:
        self.abandon()
        for poll in self._polls:
            poll.cancel()
        self._polls.clear()
        if self._listener is not None:
            self._listener.close()

    async def wait_closed(self) -> None:
        """After `close`: wait until its connections are closed, so a loop may end."""
        if self._listener is not None:
            await self._listener.wait_closed()

    # routes

    def route(self, request: Request) -> Reply:
        if not request.path.startswith(PREFIX):
            return NOT_FOUND
        parts = request.path[len(PREFIX) :].split("/")
        if parts == ["invocation", "next"]:
            return self._next() if request.method == "GET" else _method_not_allowed("GET")
        if request.method != "POST":
            known = parts == ["init", "error"] or (
                len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error")
            )
            return _method_not_allowed("POST") if known else NOT_FOUND
        if parts == ["init", "error"]:
            return self._init_error(request)
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "response":
            return self._answer(parts[1], request, "InvocationResponse")
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] == "error":
            return self._answer(parts[1], request, "InvocationErrorResponse")
        return NOT_FOUND

    def _next(self) -> Reply:
        if self.state is State.INIT_ERROR:
            return _not_allowed(self.state, State.READY.value)
        if self.init_ended_at is None:
            self.init_ended_at = time.monotonic()
        if self.state is State.READY and self._current is not None:
            return self._render(self._current)
        if self._queued is not None:
            job, self._queued = self._queued, None
            return self._deliver(job)
        poll: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        # Polls whose connections closed are cancelled; a runtime that keeps reconnecting
        # must not grow the queue.
        self._polls = collections.deque(p for p in self._polls if not p.done())
        self._polls.append(poll)
        return poll

    def _deliver(self, job: Job) -> Response:
        job.delivered_at = time.monotonic()
        job.deadline_ms = int(time.time() * 1000 + job.invocation.timeout * 1000)
        self.state = State.READY
        self._current = job
        job.delivered.set_result(None)
        return self._render(job)

    def _render(self, job: Job) -> Response:
        invocation = job.invocation
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(job.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ]
        if invocation.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
        if invocation.tenant_id is not None:
            headers.append(("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id))
        return Response(200, invocation.event, headers)

    def _answer(self, request_id: str, request: Request, target: str) -> Response:
        job = self._current
        if self.state is not State.READY or job is None:
            return _not_allowed(self.state, target)
        if request_id != job.invocation.request_id:
            return INVALID_REQUEST_ID
        self.state = State.RESPONSE_SENT
        self._current = None
        if request.body_size > MAX_RESPONSE:
            _settle(job, oversized(request.body_size))
            return TOO_LARGE
        if target == "InvocationResponse":
            _settle(job, Outcome(request.body))
        else:
            _settle(job, _error_outcome(request))
        return ACCEPTED

    def _init_error(self, request: Request) -> Response:
        if self.state is not State.STARTED:
            return _not_allowed(self.state, State.INIT_ERROR.value)
        self.state = State.INIT_ERROR
        if self.init_ended_at is None:
            self.init_ended_at = time.monotonic()
        too_large = request.body_size > MAX_RESPONSE
        if too_large:
            self.init_error = oversized(request.body_size, init_error=True)
        else:
            self.init_error = _error_outcome(request, init_error=True)
        if self._queued is not None:
            job, self._queued = self._queued, None
            _settle(job, self.init_error)
        return TOO_LARGE if too_large else ACCEPTED


def _settle(job: Job, outcome: Outcome) -> None:
    if not job.outcome.done():  # an abandoned job's outcome is already cancelled
        job.outcome.set_result(outcome)


def _method_not_allowed(allow: str) -> Response:
    # As Go's router answers: no body.
    return Response(405, headers=[("Allow", allow)], content_type="text/plain; charset=utf-8")
