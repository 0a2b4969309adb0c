"""Lambda's concurrency operations as an ASGI app, as boto3's ``lambda`` client speaks them.

- ``PUT|DELETE /2017-10-31/functions/{FunctionName}/concurrency`` and
  ``GET /2019-09-30/functions/{FunctionName}/concurrency``: a function's reserved
  concurrency, which is its pool's limit.
- ``PUT|GET|DELETE /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=Q``
  (and ``GET ...?List=ALL``): its provisioned concurrency, which is its pool's minimum of
  warm instances. skylift has one version of each function, so every qualifier names it.
- ``GET /2016-08-19/account-settings``: the server's concurrency limit and what is unreserved.

Changes apply to the running server at once and last until it stops. Errors are Lambda's,
answered through the Invoke API's helpers (``skylift.api.lambda_api``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from skylift.account import ACCOUNT_ID
from skylift.api.lambda_rest import (
    FunctionRef,
    LambdaError,
    function_not_found,
    invalid_content,
    invalid_parameter,
    respond,
    serve_operation,
    unknown_operation,
    user_error,
)
from skylift.asgi_types import Receive, Scope, Send
from skylift.engine.budget import Budget
from skylift.engine.pool import Pool

logger = logging.getLogger("skylift.api.lambda")
PREFIXES = ("/2017-10-31/functions/", "/2019-09-30/functions/", "/2016-08-19/account-settings")
# Lambda keeps this much of the account's concurrency for functions without a reservation
# (all of it, for an account whose limit is lower).
UNRESERVED_MINIMUM = 100
# Lambda's code size quotas, in bytes, as GetAccountSettings reports them.
CODE_SIZE_LIMITS = {
    "TotalCodeSize": 80_530_636_800,
    "CodeSizeUnzipped": 262_144_000,
    "CodeSizeZipped": 52_428_800,
}
Answer = tuple[int, dict[str, Any]]


def is_concurrency_request(scope: Scope) -> bool:
    """Whether an ASGI request is one of the operations ConcurrencyApi serves, by its path.

    Example: ``if is_concurrency_request(scope): await concurrency_api(scope, receive, send)``.
    """
    return scope.get("type") == "http" and str(scope.get("path", "")).startswith(PREFIXES)


@dataclass(frozen=True)
class Provisioned:
    """What the last PutProvisionedConcurrencyConfig for a function said, and when."""

    qualifier: str
    last_modified: str


class ConcurrencyApi:
    """An ASGI app serving Lambda's concurrency operations over a platform's pools.

    Example::

        api = ConcurrencyApi(platform.pools, platform.budget, region=platform.region)
        # boto3.client("lambda", ...).put_function_concurrency(
        #     FunctionName="resize", ReservedConcurrentExecutions=5)
    """

    def __init__(
        self,
        pools: Mapping[str, Pool],
        budget: Budget,
        *,
        region: str,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        self.pools = pools
        self.budget = budget
        self.region = region
        self.account_id = account_id
        # A minimum declared in the app (min_instances) dates from the server's start.
        self.started = _timestamp()
        self.provisioned: dict[str, Provisioned] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_operation(scope, receive, send, self._answer)

    async def _answer(self, scope: Scope, body: bytes | None, request_id: str, send: Send) -> None:
        status, answer = await self._dispatch(scope, body)
        await respond(send, status, b"" if status == 204 else orjson.dumps(answer), request_id)

    async def _dispatch(self, scope: Scope, body: bytes | None) -> Answer:
        method: str = scope["method"]
        query = _query(scope)
        # The raw path, since a percent-encoded "/" in the name must not split it.
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")
        if segments[1:] in (
            ["2016-08-19", "account-settings"],
            ["2016-08-19", "account-settings", ""],
        ):
            if method == "GET":
                return 200, await self.account_settings()
        elif len(segments) == 5 and segments[2] == "functions" and segments[3]:
            name = unquote(segments[3])
            match (segments[1], segments[4], method):
                case ("2017-10-31", "concurrency", "PUT"):
                    count = _whole_number(body, "ReservedConcurrentExecutions", least=0)
                    return 200, self.put_reserved(name, count)
                case ("2019-09-30", "concurrency", "GET"):
                    return 200, self.get_reserved(name)
                case ("2017-10-31", "concurrency", "DELETE"):
                    self.delete_reserved(name)
                    return 204, {}
                case ("2019-09-30", "provisioned-concurrency", "GET") if "List" in query:
                    return 200, self.list_provisioned(name)
                case ("2019-09-30", "provisioned-concurrency", "PUT"):
                    count = _whole_number(body, "ProvisionedConcurrentExecutions", least=1)
                    return 202, self.put_provisioned(name, query.get("Qualifier"), count)
                case ("2019-09-30", "provisioned-concurrency", "GET"):
                    return 200, self.get_provisioned(name, query.get("Qualifier"))
                case ("2019-09-30", "provisioned-concurrency", "DELETE"):
                    self.delete_provisioned(name, query.get("Qualifier"))
                    return 204, {}
        raise unknown_operation(scope)

    # -- reserved concurrency: the pool's limit ------------------------------------------

    def put_reserved(self, raw_name: str, count: int) -> dict[str, Any]:
        name, pool = self._function(raw_name)
        self._keep_unreserved(name, count, "ReservedConcurrentExecutions")
        if count < pool.minimum:
            raise invalid_parameter(
                f"ReservedConcurrentExecutions {count} is below {name}'s provisioned "
                f"concurrency ({pool.minimum}): reserve at least {pool.minimum}, or lower the "
                "provisioned concurrency first (DeleteProvisionedConcurrencyConfig)."
            )
        _set_limits(name, pool, maximum=count)
        return {"ReservedConcurrentExecutions": pool.limit}

    def get_reserved(self, raw_name: str) -> dict[str, Any]:
        _, pool = self._function(raw_name)
        return {"ReservedConcurrentExecutions": pool.limit} if pool.reserved else {}

    def delete_reserved(self, raw_name: str) -> None:
        _, pool = self._function(raw_name)
        if pool.reserved:
            pool.unreserve()

    # -- provisioned concurrency: the pool's minimum -------------------------------------

    def put_provisioned(self, raw_name: str, query: str | None, count: int) -> dict[str, Any]:
        name, pool = self._function(raw_name, qualifiable=True)
        qualifier = _qualifier(raw_name, query)
        if pool.reserved and count > pool.limit:
            logger.warning(
                "%s: provisioned concurrency %d > reserved %d: request less, or raise the "
                "reserved concurrency first (PutFunctionConcurrency)",
                name,
                count,
                pool.limit,
            )
            raise invalid_parameter(
                "Requested Provisioned Concurrency should not be greater than the "
                "reservedConcurrentExecution for function"
            )
        if not pool.reserved:  # its instances come out of the unreserved concurrency
            self._keep_unreserved(name, count, "ConcurrentExecutions")
        _set_limits(name, pool, minimum=count)  # instances start in the background
        self.provisioned[name] = Provisioned(qualifier, _timestamp())
        return self._config(name, pool)

    def get_provisioned(self, raw_name: str, query: str | None) -> dict[str, Any]:
        name, pool = self._function(raw_name, qualifiable=True)
        _qualifier(raw_name, query)
        if pool.minimum == 0:
            raise user_error(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                f"No Provisioned Concurrency Config found for this function ({name}): put one "
                "with PutProvisionedConcurrencyConfig.",
            )
        return self._config(name, pool)

    def list_provisioned(self, raw_name: str) -> dict[str, Any]:
        name, pool = self._function(raw_name)
        if pool.minimum == 0:
            return {"ProvisionedConcurrencyConfigs": []}
        # A minimum declared in the app has no qualifier: it is the function's own.
        arn = self._arn(name)
        if name in self.provisioned:
            arn += f":{self.provisioned[name].qualifier}"
        return {"ProvisionedConcurrencyConfigs": [{"FunctionArn": arn, **self._config(name, pool)}]}

    def delete_provisioned(self, raw_name: str, query: str | None) -> None:
        name, pool = self._function(raw_name, qualifiable=True)
        _qualifier(raw_name, query)
        _set_limits(name, pool, minimum=0)
        self.provisioned.pop(name, None)

    def _keep_unreserved(self, name: str, count: int, member: str) -> None:
        """Refuse, as Lambda does, to take `count` for `name` out of the concurrency that
        functions without a reservation share, when less than its minimum would be left."""
        others = sum(p.limit for n, p in self.pools.items() if p.reserved and n != name)
        unreserved = self.budget.limit - others
        floor = min(UNRESERVED_MINIMUM, self.budget.limit)
        if unreserved - count < floor:
            logger.warning(
                "%s may have at most %d of the server's concurrency (%d): ask for less, lower "
                "other functions' reservations (skylift status shows them), or raise the "
                "server's limit (skylift up --concurrency)",
                name,
                max(unreserved - floor, 0),
                self.budget.limit,
            )
            raise invalid_parameter(
                f"Specified {member} for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{floor}]."
            )

    def _config(self, name: str, pool: Pool) -> dict[str, Any]:
        status = pool.status()
        requested = pool.minimum
        # Instances still starting are allocated; started ones (idle or busy) are available.
        allocated = min(requested, int(status["instances"]))
        available = min(requested, int(status["idle"]) + int(status["busy"]))
        modified = self.provisioned.get(name)
        return {
            "RequestedProvisionedConcurrentExecutions": requested,
            "AvailableProvisionedConcurrentExecutions": available,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": "READY" if available >= requested else "IN_PROGRESS",
            "LastModified": modified.last_modified if modified else self.started,
        }

    # -- the account ----------------------------------------------------------------------

    async def account_settings(self) -> dict[str, Any]:
        reserved = sum(pool.limit for pool in self.pools.values() if pool.reserved)
        directories = {pool.spec.code_dir for pool in self.pools.values()}
        code_size = await asyncio.to_thread(_code_size, directories)
        return {
            "AccountLimit": {
                **CODE_SIZE_LIMITS,
                "ConcurrentExecutions": self.budget.limit,
                "UnreservedConcurrentExecutions": max(0, self.budget.limit - reserved),
            },
            "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": len(self.pools)},
        }

    # -- names ----------------------------------------------------------------------------

    def _function(self, raw_name: str, *, qualifiable: bool = False) -> tuple[str, Pool]:
        """The function's name and pool, or Lambda's error for a name that names none."""
        ref = FunctionRef.parse(raw_name)
        arn = self._arn(ref.name, ref.region, ref.account)
        ref.check_home(arn, self.region, self.account_id)
        pool = self.pools.get(ref.name)
        if pool is None:
            raise function_not_found(arn, self.pools)
        if ref.qualifier and not qualifiable:
            raise invalid_parameter(
                f"Concurrency is set for a whole function, not a version or alias: name "
                f"{ref.name} without the qualifier ':{ref.qualifier}'."
            )
        return ref.name, pool

    def _arn(self, name: str, region: str | None = None, account: str | None = None) -> str:
        return (
            f"arn:aws:lambda:{region or self.region}:{account or self.account_id}:function:{name}"
        )


def _qualifier(raw_name: str, query: str | None) -> str:
    """The version or alias a provisioned concurrency operation names (required, as in AWS)."""
    derived = FunctionRef.parse(raw_name).qualifier
    if derived and query and derived != query:
        raise invalid_parameter(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    qualifier = derived or query
    if not qualifier:
        raise _invalid_value("null", "qualifier", "Member must not be null")
    return qualifier


def _whole_number(body: bytes | None, member: str, *, least: int) -> int:
    """`member` of a JSON body, which Lambda's model declares a whole number >= `least`."""
    if body is None:
        raise invalid_content(f"The request body is too large: send {{{member!r}: N}}.")
    try:
        request = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise invalid_content(f"Could not parse request body into json: {exc}") from None
    field = member[0].lower() + member[1:]  # Coral names members so in its messages
    value = request.get(member) if isinstance(request, dict) else None
    if value is None:
        raise _invalid_value("null", field, "Member must not be null")
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_content(f"{member} must be a whole number, got {value!r}.")
    if value < least:
        raise _invalid_value(
            f"'{value}'", field, f"Member must have value greater than or equal to {least}"
        )
    return value


def _invalid_value(value: str, field: str, constraint: str) -> LambdaError:
    # Lambda's request validation (Coral's) words a violated constraint of its model so.
    return user_error(
        400,
        "ValidationException",
        f"1 validation error detected: Value {value} at '{field}' failed to satisfy "
        f"constraint: {constraint}",
    )


def _set_limits(
    name: str, pool: Pool, *, minimum: int | None = None, maximum: int | None = None
) -> None:
    try:
        pool.set_limits(minimum=minimum, maximum=maximum)
    except ValueError as exc:
        raise invalid_parameter(f"{name}: {exc}") from None


def _query(scope: Scope) -> dict[str, str]:
    pairs = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {key: values[0] for key, values in pairs.items()}


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())  # Lambda's LastModified


def _code_size(directories: set[str]) -> int:
    """Bytes of the functions' code, each directory counted once; hidden directories (a
    virtualenv, .git, skylift's state) and bytecode caches are not code."""
    tops = sorted({Path(d).resolve() for d in directories}, key=lambda p: len(p.parts))
    distinct: list[Path] = []
    for top in tops:
        if not any(top.is_relative_to(outer) for outer in distinct):
            distinct.append(top)
    total = 0
    for top in distinct:
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for file in files:
                try:
                    total += os.lstat(os.path.join(root, file)).st_size
                except OSError:
                    pass  # removed while we walked
    return total
