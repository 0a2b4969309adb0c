"""REST API keys and usage plans: `ApiKeyRequired` routes want a known `x-api-key`.

As API Gateway answers: no key, or a key in none of the API's usage plans, is 403
`{"message":"Forbidden"}`; past the plan's quota (per UTC day, week or month) 429
`{"message":"Limit Exceeded"}`; past its throttle (a token bucket of `burst` requests
refilled at `rate` a second) 429 `{"message":"Too Many Requests"}`. A refused request
spends neither throttle nor quota. Keys are compared in constant time. Counts live in this
server's memory: they restart with it, and each node of a cluster counts its own.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

from skylift.events import _common
from skylift.events.http import HttpRequest, HttpResponse
from skylift.route_access import ApiKey, RouteAccess, UsagePlan

FORBIDDEN = b'{"message":"Forbidden"}'
LIMIT_EXCEEDED = b'{"message":"Limit Exceeded"}'
TOO_MANY_REQUESTS = b'{"message":"Too Many Requests"}'


def _period(period: str, now: float) -> str:
    """The quota window `now` falls in: a UTC day, ISO week or month (as AWS counts)."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "WEEK":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week}"
    if period == "MONTH":
        return moment.strftime("%Y-%m")
    return moment.strftime("%Y-%m-%d")


class ApiKeys:
    """Checks keys against usage plans, counting each key's quota and throttle."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._used: dict[tuple[str, str], tuple[str, int]] = {}  # -> (window, count)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)

    def check(self, access: RouteAccess, request: HttpRequest) -> HttpResponse | ApiKey:
        """The key the request presented (and counted), or the response refusing it."""
        presented = next((v for k, v in request.headers if k.lower() == "x-api-key"), None)
        if not presented:
            return _common.json_response(403, FORBIDDEN)
        given = presented.encode()
        for plan in access.usage_plans:
            for key in plan.keys:  # compared in constant time: no timing hints at a key
                if hmac.compare_digest(key.value.encode(), given) and key.enabled:
                    refused = self._count(plan, key)
                    return key if refused is None else refused
        return _common.json_response(403, FORBIDDEN)

    def _count(self, plan: UsagePlan, key: ApiKey) -> HttpResponse | None:
        """Throttle, then quota; a request either one refuses spends neither."""
        slot = (plan.plan_id, key.key_id)
        bucket = None
        if plan.rate is not None or plan.burst is not None:
            rate = plan.rate if plan.rate is not None else float(plan.burst or 1)
            burst = float(plan.burst if plan.burst is not None else max(1, int(rate)))
            now = self._monotonic()
            tokens, at = self._buckets.get(slot, (burst, now))
            bucket = (min(burst, tokens + (now - at) * rate), now)
            self._buckets[slot] = bucket
            if bucket[0] < 1:
                return _common.json_response(429, TOO_MANY_REQUESTS)
        if plan.quota_limit is not None:
            window = _period(plan.quota_period, self._clock())
            used_window, count = self._used.get(slot, (window, 0))
            if used_window != window:
                count = 0
            if count >= plan.quota_limit:
                return _common.json_response(429, LIMIT_EXCEEDED)
            self._used[slot] = (window, count + 1)
        if bucket is not None:
            self._buckets[slot] = (bucket[0] - 1, bucket[1])
        return None
