"""The exceptions skylift raises. One root, a shallow tree, each carrying data."""

from __future__ import annotations

import errno


class SkyliftError(Exception):
    """Root of every error skylift raises on purpose."""


class DeclarationError(SkyliftError):
    """Raised when an app or a template declares something skylift cannot run.

    The message names the function (when there is one) and says what to change.
    """

    def __init__(self, message: str, *, function: str | None = None) -> None:
        self.function = function
        super().__init__(f"function {function!r}: {message}" if function else message)


class FunctionNotFound(SkyliftError):
    """Raised when an invocation names a function the app does not declare."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        hint = ", ".join(sorted(known)) or "none"
        super().__init__(f"no function named {name!r}; the app declares: {hint}")


class LoadError(SkyliftError):
    """Raised when an app cannot be loaded at all (missing file, import failure)."""


class Throttled(SkyliftError):
    """Raised when an invocation waited past the limit for a free instance.

    `reason` is Lambda's: "ReservedFunctionConcurrentInvocationLimitExceeded" when the
    function's own limit was reached, "ConcurrentInvocationLimitExceeded" for the server's.
    """

    def __init__(self, function: str, reason: str, limit: int) -> None:
        self.function = function
        self.reason = reason
        self.limit = limit
        which = "its reserved concurrency" if reason.startswith("Reserved") else "the server's"
        super().__init__(
            f"Rate Exceeded. {function!r} is at {which} limit of {limit} concurrent "
            "invocations; retry later, or raise the limit"
        )


class TenantMismatch(SkyliftError):
    """Raised when an invocation's tenant id does not fit the function: none for a function
    with tenant isolation (TenancyConfig PER_TENANT), or one for a function without it."""

    def __init__(self, function: str, isolated: bool) -> None:
        self.function = function
        self.isolated = isolated
        hint = (
            "it has tenant isolation (TenancyConfig PER_TENANT): invoke it with a tenant id "
            "(boto3 invoke(TenantId=...), header X-Amz-Tenant-Id, skylift invoke --tenant-id)"
            if isolated
            else "it has no tenant isolation: invoke it without a tenant id"
        )
        super().__init__(f"function {function!r}: {hint}")


RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


class OutOfSpace(SkyliftError):
    """Raised when a store has no space left on its disk; calls succeed again once there is."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk, or the user's quota on it, is full.

    Example: ``is_disk_full(OSError(errno.ENOSPC, "No space left on device"))`` is True, as
    is SQLite's ``database or disk is full``.
    """
    if isinstance(exc, OutOfSpace):
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return getattr(exc, "sqlite_errorname", None) == "SQLITE_FULL"
