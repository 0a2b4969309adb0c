"""The decorator front door: declare functions and their triggers on an `App`.

from skylift import App

app = App()

@app.http("/change", methods=["POST"])
def change(event, context):
    return {"statusCode": 200, "body": "..."}

@app.queue("orders", batch_size=10, report_batch_item_failures=True)
def take_orders(event, context): ...

@app.schedule("rate(5 minutes)")
def tick(event, context): ...

@app.upload("uploads", prefix="in/", suffix=".csv")
def ingest(event, context): ...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar, Unpack

from skylift.declarations import Declared, FunctionOptions, TriggerOptions, declare
from skylift.errors import DeclarationError
from skylift.spec import FunctionSpec, HttpRoute, PayloadVersion
from skylift.spec_checks import validate_app, validate_function
from skylift.triggers import (
    AsyncConfig,
    Destination,
    QueueTrigger,
    ScheduleTrigger,
    UploadTrigger,
    validate_bucket_name,
    validate_queue_name,
)
from skylift.validation import check_model

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """A set of functions declared with decorators; `skylift up` serves it."""

    def __init__(self, name: str = "skylift", *, docs: bool = False) -> None:
        """`docs=True` serves the app's OpenAPI document at /openapi.json and Swagger UI
        at /docs (needs `pip install 'skylift[openapi]'`)."""
        self.name = name
        self._functions: dict[str, Declared] = {}
        self.queues: dict[str, dict[str, str]] = {}  # name -> SQS attributes
        self.buckets: set[str] = set()
        self.after_fork_hooks: list[Callable[[], None]] = []
        # function name -> (request model, response model): pydantic classes or None
        self.models: dict[str, tuple[Any, Any]] = {}
        self.openapi_extra: dict[str, dict[str, Any]] = {}  # function name -> operation keys
        self._undocumented: set[str] = set()
        if docs:
            from skylift import swagger

            swagger.declare(self.http, self.openapi, self.name)
            self._undocumented = {"openapi", "swagger-ui"}

    # --- triggers -----------------------------------------------------------------------

    def http(
        self,
        path: str,
        methods: Iterable[str] = ("GET",),
        *,
        payload: PayloadVersion = "2.0",
        name: str | None = None,
        request_model: Any = None,
        response_model: Any = None,
        openapi: Mapping[str, Any] | None = None,
        **options: Unpack[FunctionOptions],
    ) -> Callable[[F], F]:
        """Serve the decorated handler on `methods` `path` through the HTTP gateway.

        `payload` "2.0" delivers HTTP API events, "1.0" REST API proxy events.
        `request_model` and `response_model` (pydantic models) document the body and
        the answer in /openapi.json; a body that fails `request_model` gets a 400 with
        pydantic's errors, and the handler does not run. `openapi` adds keys to the
        route's operation there (`parameters` and `responses` are merged).

        >>> @app.http("/items/{id}", methods=["GET"])  # doctest: +SKIP
        ... def get_item(event, context): ...
        """
        if isinstance(methods, str):
            methods = [methods]
        route = HttpRoute(path, tuple(m.upper() for m in methods), payload)
        register = self._decorator(name, options, lambda s: replace(s, routes=(*s.routes, route)))
        if request_model is None and response_model is None and openapi is None:
            return register

        def with_models(fn: F) -> F:
            for model in (request_model, response_model):
                check_model(model, name or fn.__name__)
            register(fn)
            self.models[name or fn.__name__] = (request_model, response_model)
            self.openapi_extra[name or fn.__name__] = dict(openapi or {})
            return fn

        return with_models

    def function(
        self,
        name: str | None = None,
        *,
        retries: int | None = None,
        max_event_age: int | None = None,
        on_success: str | None = None,
        on_failure: str | None = None,
        dead_letter_queue: str | None = None,
        runtime_command: Sequence[str] | None = None,
        **options: Unpack[FunctionOptions],
    ) -> Callable[[F], F]:
        """Declare a plain invokable handler (Invoke API, `skylift invoke`).

        `runtime_command` runs each instance as that process, which must speak the Lambda
        Runtime API (e.g. `["python", "-m", "awslambdaric", "app.handler"]`), instead of
        forking the app's zygote: for code that is not Python. Python code that is not
        fork-safe is better served by `spawn=True` (every decorator takes it): a fresh
        interpreter per instance that imports the module itself.

        The asynchronous options are Lambda's EventInvokeConfig: `retries` (0-2, default
        2), `max_event_age` (60-21600 s), destinations `on_success` / `on_failure`
        ("queue:NAME", "function:NAME" or an ARN) and a `dead_letter_queue` (a name).

        >>> @app.function(timeout=10, on_failure="queue:resize-failed")  # doctest: +SKIP
        ... def resize(event, context): ...
        """
        settings: dict[str, Any] = dict(options)
        if runtime_command is not None:
            if isinstance(runtime_command, str):
                raise DeclarationError(
                    "runtime_command must be a list of arguments, e.g. ['./bootstrap']",
                    function=name,
                )
            settings["runtime_command"] = tuple(runtime_command)
        if any(
            v is not None
            for v in (retries, max_event_age, on_success, on_failure, dead_letter_queue)
        ):
            default = AsyncConfig()
            settings["async_config"] = AsyncConfig(
                default.max_retries if retries is None else retries,
                default.max_event_age if max_event_age is None else max_event_age,
                Destination.parse(on_success) if on_success else None,
                Destination.parse(on_failure) if on_failure else None,
                dead_letter_queue,
            )
        return self._decorator(name, settings, lambda s: s)

    def queue(
        self,
        queue: str,
        *,
        batch_size: int = 10,
        max_batching_window: float = 0,
        max_concurrency: int | None = None,
        report_batch_item_failures: bool = False,
        name: str | None = None,
        **options: Unpack[TriggerOptions],
    ) -> Callable[[F], F]:
        """Invoke the handler with batches of messages from `queue` (an SQS mapping).

        The queue is created when the app starts if it does not exist. `max_concurrency`
        caps concurrent batches (ScalingConfig.MaximumConcurrency); to cap the function
        itself, stack `@app.function(max_concurrency=N)`.

        >>> @app.queue("orders", batch_size=10, report_batch_item_failures=True)  # doctest: +SKIP
        ... def take(event, context): return {"batchItemFailures": []}
        """
        trigger = QueueTrigger(
            queue, batch_size, max_batching_window, max_concurrency, report_batch_item_failures
        )
        self.queues.setdefault(queue, {})
        return self._decorator(name, options, lambda s: replace(s, queues=(*s.queues, trigger)))

    def schedule(
        self,
        expression: str,
        *,
        input: Any = None,
        enabled: bool = True,
        name: str | None = None,
        **options: Unpack[FunctionOptions],
    ) -> Callable[[F], F]:
        """Invoke the handler on an EventBridge schedule: `rate(5 minutes)`, `cron(0 12 * * ? *)`.

        `input`, when given, is delivered instead of the Scheduled Event (any JSON value).
        """
        text = None if input is None else json.dumps(input)
        trigger = ScheduleTrigger(expression, text, enabled)
        return self._decorator(
            name, options, lambda s: replace(s, schedules=(*s.schedules, trigger))
        )

    def upload(
        self,
        bucket: str,
        *,
        prefix: str = "",
        suffix: str = "",
        events: Iterable[str] = ("s3:ObjectCreated:*",),
        name: str | None = None,
        **options: Unpack[FunctionOptions],
    ) -> Callable[[F], F]:
        """Invoke the handler with S3 events for objects created (or removed) in `bucket`."""
        if isinstance(events, str):
            events = [events]
        trigger = UploadTrigger(bucket, tuple(events), prefix, suffix)
        self.buckets.add(bucket)
        return self._decorator(name, options, lambda s: replace(s, uploads=(*s.uploads, trigger)))

    def after_fork(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Run `hook()` once in every new instance, before its first invocation: right
        after the fork, or (`spawn=True`) after the fresh interpreter's import.

        For state made at import time that must not be shared between processes:
        reconnect a database client, reseed a random generator, restart a thread.

        >>> @app.after_fork  # doctest: +SKIP
        ... def reconnect(): db.connect()
        """
        if not callable(hook):
            raise DeclarationError(f"after_fork needs a function, got {hook!r}")
        self.after_fork_hooks.append(hook)
        return hook

    # --- resources ----------------------------------------------------------------------

    def declare_queue(
        self,
        name: str,
        *,
        visibility_timeout: int | None = None,
        delay_seconds: int | None = None,
        retention_seconds: int | None = None,
        dead_letter_queue: str | None = None,
        max_receive_count: int | None = None,
        content_based_deduplication: bool | None = None,
    ) -> None:
        """Create `name` at startup with these SQS attributes (a FIFO queue ends in .fifo).

        >>> app.declare_queue("orders", visibility_timeout=60,  # doctest: +SKIP
        ...                   dead_letter_queue="orders-dlq", max_receive_count=3)
        """
        validate_queue_name(name)
        attributes: dict[str, str] = {}
        if name.endswith(".fifo"):
            attributes["FifoQueue"] = "true"
        for key, value in (
            ("VisibilityTimeout", visibility_timeout),
            ("DelaySeconds", delay_seconds),
            ("MessageRetentionPeriod", retention_seconds),
        ):
            if value is not None:
                attributes[key] = str(value)
        if content_based_deduplication is not None:
            attributes["ContentBasedDeduplication"] = str(content_based_deduplication).lower()
        if (dead_letter_queue is None) != (max_receive_count is None):
            raise DeclarationError(
                f"queue {name!r}: give dead_letter_queue and max_receive_count together"
            )
        if dead_letter_queue is not None:
            validate_queue_name(dead_letter_queue)
            self.queues.setdefault(dead_letter_queue, {})
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": f"arn:aws:sqs:::{dead_letter_queue}",
                    "maxReceiveCount": max_receive_count,
                }
            )
        self.queues[name] = {**self.queues.get(name, {}), **attributes}

    def declare_bucket(self, name: str) -> None:
        """Create the bucket `name` at startup if it does not exist."""
        validate_bucket_name(name)
        self.buckets.add(name)

    # --- internals ----------------------------------------------------------------------

    def _decorator(
        self,
        name: str | None,
        options: Mapping[str, Any],
        add: Callable[[FunctionSpec], FunctionSpec],
    ) -> Callable[[F], F]:
        def register(fn: F) -> F:
            declared = declare(self._functions, fn, name, options)
            declared.spec = add(declared.spec)
            # Check the whole app now, so the error points at this decorator.
            validate_function(declared.spec)
            validate_app(d.spec for d in self._functions.values())
            return fn

        return register

    def resolve(self, code_dir: str, module: str) -> list[tuple[FunctionSpec, Callable[..., Any]]]:
        """The app's specs, rooted at `code_dir`, each with its handler callable."""
        del module  # handlers are known by object; `_HANDLER` names where they live
        from skylift.validation import validating

        out = []
        for name, d in self._functions.items():
            request_model = self.models.get(name, (None, None))[0]
            fn = d.fn if request_model is None else validating(d.fn, request_model)
            out.append((replace(d.spec, code_dir=code_dir), fn))
        return out

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the app's HTTP routes (what /openapi.json serves)."""
        from skylift import openapi

        shown = [d for n, d in self._functions.items() if n not in self._undocumented]
        docs = {d.spec.name: d.fn.__doc__ or "" for d in shown}
        ops = openapi.operations((d.spec for d in shown), docs, self.models, self.openapi_extra)
        return openapi.document(self.name, ops)
