"""HTTP routes: which function a request goes to, and its path parameters.

Precedence follows API Gateway: an exact path beats a path with parameters, which
beats a greedy `{proxy+}`; among equals, more literal segments win; a specific method
beats `ANY`; the HTTP API `$default` route catches what nothing else does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from skylift.events.http import RouteMatch
from skylift.spec import FunctionSpec, HttpRoute

_PARAM = re.compile(r"\{([^}+]+)(\+?)\}")


@dataclass(frozen=True)
class Target:
    """A function and the route of it that a request matched."""

    function: str
    route: HttpRoute


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    names: tuple[str, ...]
    by_method: dict[str, Target]
    resource: str


class Router:
    def __init__(self, specs: Iterable[FunctionSpec]) -> None:
        self._exact: dict[str, dict[str, Target]] = {}
        patterns: dict[str, dict[str, Target]] = {}
        self._default: Target | None = None
        for spec in specs:
            for route in spec.routes:
                target = Target(spec.name, route)
                if route.path == "$default":
                    self._default = target
                    continue
                table = patterns if "{" in route.path else self._exact
                methods = table.setdefault(route.path, {})
                for method in route.methods:
                    methods[method] = target
        self._patterns = [
            _compile(path, methods) for path, methods in sorted(patterns.items(), key=_rank)
        ]

    @property
    def routes(self) -> list[tuple[str, Target]]:
        """Every (method, target) pair, for listing at startup."""
        out = [(m, t) for methods in self._exact.values() for m, t in methods.items()]
        out += [(m, t) for p in self._patterns for m, t in p.by_method.items()]
        if self._default:
            out.append(("ANY", self._default))
        return out

    def match(self, method: str, path: str) -> tuple[Target, RouteMatch] | None:
        """The target for `method` on the decoded `path`, or None (a 404)."""
        methods = self._exact.get(path)
        if methods is not None:
            target = methods.get(method) or methods.get("ANY")
            if target is not None:
                return target, RouteMatch(path, _route_key(method, target), {})
        for pattern in self._patterns:
            target = pattern.by_method.get(method) or pattern.by_method.get("ANY")
            if target is None:
                continue
            found = pattern.regex.match(path)
            if found:
                params = dict(zip(pattern.names, found.groups(), strict=True))
                return target, RouteMatch(pattern.resource, _route_key(method, target), params)
        if self._default is not None:
            return self._default, RouteMatch("$default", "$default", {})
        return None


def _route_key(method: str, target: Target) -> str:
    route = target.route
    shown = method if method in route.methods else "ANY"
    return f"{shown} {route.path}"


def _rank(item: tuple[str, dict[str, Target]]) -> tuple[int, int, int]:
    path = item[0]
    segments = path.strip("/").split("/")
    literal = sum(1 for s in segments if "{" not in s)
    greedy = 1 if path.endswith("+}") else 0
    return (greedy, -literal, -len(segments))


def _compile(path: str, methods: dict[str, Target]) -> _Pattern:
    names: list[str] = []
    regex = ""
    position = 0
    for found in _PARAM.finditer(path):
        regex += re.escape(path[position : found.start()])
        names.append(found.group(1))
        # A parameter is one non-empty segment; a greedy one is the non-empty rest.
        regex += "(.+)" if found.group(2) else "([^/]+)"
        position = found.end()
    regex += re.escape(path[position:])
    return _Pattern(re.compile(regex + r"\Z"), tuple(names), methods, path)
