"""The hook through which the platform records what happened to a function.

`skylift describe` lists these events (`observe/events.py` keeps them). The engine
only calls `record(function, reason, message)`; what a reason means (Normal or Warning,
which component reports it) is the event store's business.
"""

from __future__ import annotations

from collections.abc import Callable

# function, reason (CamelCase, as Kubernetes names them: "Throttled"), message
Record = Callable[[str, str, str], None]


def ignore(function: str, reason: str, message: str) -> None:
    """The default: nothing is kept (no server, e.g. `skylift invoke`)."""
