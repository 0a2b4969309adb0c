"""The function routes requests went to, remembered by (method, request-target, Host):
one `Decided` per front (server), used by `front_request.new_cycle`."""

from __future__ import annotations

from typing import Any

MAX_DECIDED = 512  # function routes' (method, target, Host) remembered; past it, forgotten
MAX_TARGET = 256  # longer request-targets are decided afresh every time

Key = tuple[bytes, bytes, "bytes | None"]
# What a request was decided to be: the route matched (`front_function.Matched`), its
# raw path and its query, as text.
Found = tuple[Any, str, str]


class Decided:
    """The function routes requests went to, by (method, request-target, Host), for
    requests without AWS markers: the same three decide the same way (the path's decoding,
    the control prefix, `aws_service`, the router, the Host check) while the gateway's
    router, services and guard are the same objects (a reload swaps the router whole).
    Keep-alive clients repeat their requests, so most skip all of that."""

    __slots__ = ("guard", "router", "routes", "services")

    def __init__(self) -> None:
        self.routes: dict[Key, Found] = {}
        self.router: object = None
        self.services: object = None
        self.guard: object = None

    def get(self, gateway: Any, key: Key) -> Found | None:
        """What `key` was decided to be, unless `gateway` (`asgi.Gateway`) changed since."""
        if (
            gateway.router is not self.router
            or gateway.services is not self.services
            or gateway.guard is not self.guard
        ):
            self.routes.clear()
            self.router, self.services, self.guard = gateway.router, gateway.services, gateway.guard
            return None
        return self.routes.get(key)

    def put(self, key: Key, found: Found) -> None:
        routes = self.routes
        if len(routes) >= MAX_DECIDED:
            routes.clear()  # many distinct targets (path parameters): start over
        routes[key] = found
