"""The decorator front door: declare functions and their triggers on an `App`.

from skylift import App

app = App()

@app.http("/change", methods=["POST"])
def change(event, context):
    return {"statusCode": 200, "body": "..."}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from skylift.errors import DeclarationError
from skylift.spec import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    FunctionSpec,
    HttpRoute,
    PayloadVersion,
    validate_app,
    validate_function,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Declared:
    spec: FunctionSpec
    fn: Callable[..., Any]
    routes: list[HttpRoute] = field(default_factory=list)


class App:
    """A set of functions declared with decorators; `skylift up` serves it."""

    def __init__(self, name: str = "skylift") -> None:
        self.name = name
        self._functions: dict[str, _Declared] = {}

    def http(
        self,
        path: str,
        methods: Iterable[str] = ("GET",),
        *,
        payload: PayloadVersion = "2.0",
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        memory: int = DEFAULT_MEMORY,
        environment: Mapping[str, str] | None = None,
        max_concurrency: int | None = None,
    ) -> Callable[[F], F]:
        """Serve the decorated handler on `methods` `path` through the HTTP gateway.

        `payload` "2.0" delivers HTTP API events, "1.0" REST API proxy events.

        >>> @app.http("/items/{id}", methods=["GET"])  # doctest: +SKIP
        ... def get_item(event, context): ...
        """
        if isinstance(methods, str):
            methods = [methods]
        route = HttpRoute(path, tuple(m.upper() for m in methods), payload)

        def register(fn: F) -> F:
            declared = self._declare(fn, name, timeout, memory, environment, max_concurrency)
            declared.routes.append(route)
            declared.spec = replace(declared.spec, routes=tuple(declared.routes))
            # Check the whole app now, so the error points at this decorator.
            validate_function(declared.spec)
            validate_app(d.spec for d in self._functions.values())
            return fn

        return register

    def function(
        self,
        name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory: int = DEFAULT_MEMORY,
        environment: Mapping[str, str] | None = None,
        max_concurrency: int | None = None,
    ) -> Callable[[F], F]:
        """Declare a plain invokable handler (Invoke API, `skylift invoke`).

        >>> @app.function(timeout=10)  # doctest: +SKIP
        ... def resize(event, context): ...
        """

        def register(fn: F) -> F:
            self._declare(fn, name, timeout, memory, environment, max_concurrency)
            return fn

        return register

    def _declare(
        self,
        fn: Callable[..., Any],
        name: str | None,
        timeout: float,
        memory: int,
        environment: Mapping[str, str] | None,
        max_concurrency: int | None,
    ) -> _Declared:
        if not callable(fn):
            raise DeclarationError(f"{fn!r} is not callable: decorate a function")
        fname = name or fn.__name__
        spec = FunctionSpec(
            name=fname,
            handler=f"{fn.__module__}.{fn.__name__}",
            code_dir="",
            timeout=timeout,
            memory=memory,
            environment=dict(environment or {}),
            max_concurrency=max_concurrency,
        )
        existing = self._functions.get(fname)
        if existing is None:
            validate_function(spec)
            declared = self._functions[fname] = _Declared(spec, fn)
            return declared
        if existing.fn is not fn:
            raise DeclarationError(
                f"function name {fname!r} is declared twice (by {existing.fn.__qualname__} "
                f"and {fn.__qualname__}): rename one, or pass name=..."
            )
        if replace(existing.spec, routes=()) != spec:
            raise DeclarationError(
                "stacked decorators give different settings (timeout, memory, environment, "
                "max_concurrency): set them on one decorator only",
                function=fname,
            )
        return existing

    def resolve(self, code_dir: str, module: str) -> list[tuple[FunctionSpec, Callable[..., Any]]]:
        """The app's specs, rooted at `code_dir`, each with its handler callable."""
        del module  # handlers are known by object; `_HANDLER` names where they live
        return [(replace(d.spec, code_dir=code_dir), d.fn) for d in self._functions.values()]
