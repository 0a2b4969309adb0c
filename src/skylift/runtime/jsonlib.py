"""JSON for the instance side: orjson where it is installed, the stdlib's json elsewhere.

A function whose `Runtime` names another Python than skylift's runs on that interpreter
(see `skylift.interpreters`), where skylift's compiled dependencies are not importable;
the worker's wire format is plain JSON either way.
"""

from __future__ import annotations

import json
from typing import Any


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


try:
    from orjson import dumps as dumps
    from orjson import loads as loads
except ImportError:  # another interpreter: orjson is built for skylift's own
    dumps = _dumps  # type: ignore[assignment]  # same contract: a value in, bytes out
    loads = json.loads  # type: ignore[assignment]  # accepts bytes and str, as orjson's
