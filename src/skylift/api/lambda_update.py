"""UpdateFunctionConfiguration's request, checked as Lambda checks it, turned into the
function's new spec. Pure: applying it to the running server is the caller's job.

skylift changes Environment, Timeout, MemorySize and Description. Any other member is
accepted when it repeats what GetFunctionConfiguration reports (tools often send the
whole configuration back), and refused otherwise: the request then changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

import orjson

from skylift.api.lambda_rest import (
    invalid_content,
    invalid_parameter,
    user_error,
    validation_error,
)
from skylift.errors import DeclarationError
from skylift.spec import (
    MAX_MEMORY,
    MAX_TIMEOUT,
    MIN_MEMORY,
    RESERVED_ENV,
    FunctionSpec,
)
from skylift.spec_checks import validate_function

logger = logging.getLogger("skylift.api.lambda")
ENV_LIMIT = 4096  # bytes of Environment.Variables, measured as Lambda measures them
DESCRIPTION_LIMIT = 256
_ENV_KEY = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")  # Lambda's model: two characters at least
CHANGEABLE = ("Environment", "Timeout", "MemorySize", "Description", "RevisionId")


@dataclasses.dataclass(frozen=True)
class Update:
    """A checked UpdateFunctionConfiguration: the new spec and description."""

    spec: FunctionSpec
    description: str


def plan_update(
    spec: FunctionSpec,
    request: Mapping[str, Any],
    current: Mapping[str, Any],
    revision_id: str,
) -> Update:
    """The update `request` asks of `spec`, whose configuration is now `current` (as
    GetFunctionConfiguration answers) at revision `revision_id`; raises Lambda's error
    for a request Lambda refuses, or one skylift cannot carry out."""
    _refuse_unsupported(request, current)
    wanted = request.get("RevisionId")
    if wanted is not None and wanted != revision_id:
        raise user_error(
            412,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id",
        )
    changes: dict[str, Any] = {}
    if request.get("Timeout") is not None:
        changes["timeout"] = _timeout(request["Timeout"])
    if request.get("MemorySize") is not None:
        changes["memory"] = _memory(request["MemorySize"])
    if request.get("Environment") is not None:
        changes["environment"] = _environment(request["Environment"])
    description = current.get("Description", "")
    if request.get("Description") is not None:
        description = _description(request["Description"])
    new = dataclasses.replace(spec, **changes)
    try:
        validate_function(new)
    except DeclarationError as exc:  # a rule of skylift's beyond Lambda's model
        raise invalid_parameter(str(exc)) from None
    return Update(new, description)


def _refuse_unsupported(request: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    for member, value in request.items():
        if member in CHANGEABLE or value in (None, "", [], {}) or current.get(member) == value:
            continue
        logger.warning(
            "UpdateFunctionConfiguration: skylift changes Environment, Timeout, MemorySize "
            "and Description of a running function; change %s in the app or template and "
            "restart `skylift up`",
            member,
        )
        raise invalid_parameter(
            f"skylift cannot change {member} of a running function (it changes Environment, "
            "Timeout, MemorySize and Description)."
        )


def _whole_number(value: Any, member: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_content(
            f"Could not parse request body into json: {member} must be a whole number, got "
            f"{orjson.dumps(value).decode()}"
        )
    return value


def _timeout(value: Any) -> int:
    seconds = _whole_number(value, "Timeout")
    if seconds < 1:
        raise validation_error(
            f"'{seconds}'", "timeout", "Member must have value greater than or equal to 1"
        )
    if seconds > MAX_TIMEOUT:
        raise validation_error(
            f"'{seconds}'", "timeout", f"Member must have value less than or equal to {MAX_TIMEOUT}"
        )
    return seconds


def _memory(value: Any) -> int:
    megabytes = _whole_number(value, "MemorySize")
    for bad, bound, word in (
        (megabytes < MIN_MEMORY, MIN_MEMORY, "greater"),
        (megabytes > MAX_MEMORY, MAX_MEMORY, "less"),
    ):
        if bad:
            raise user_error(
                400,
                "ValidationException",
                f"'MemorySize' value failed to satisfy constraint: Member must have value "
                f"{word} than or equal to {bound}",
            )
    return megabytes


def _description(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_content(
            "Could not parse request body into json: Description must be a string"
        )
    if len(value) > DESCRIPTION_LIMIT:
        raise validation_error(
            f"'{value}'",
            "description",
            f"Member must have length less than or equal to {DESCRIPTION_LIMIT}",
        )
    return value


def _environment(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise invalid_content(
            "Could not parse request body into json: Environment must be an object"
        )
    variables = value.get("Variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise invalid_content(
            "Could not parse request body into json: Environment.Variables must map names "
            "to strings"
        )
    if not all(_ENV_KEY.fullmatch(key) for key in variables):
        # Lambda does not echo the values of a sensitive member.
        raise validation_error(
            "",
            "environment.variables",
            "Map keys must satisfy constraint: [Member must satisfy regular expression "
            "pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
        )
    reserved = [key for key in variables if key in RESERVED_ENV]
    if reserved:
        raise invalid_parameter(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided contains reserved keys that are "
            "currently not supported for modification. Reserved keys used in this request: "
            + ", ".join(reserved)
        )
    measured = orjson.dumps(variables).decode()
    if len(measured.encode()) > ENV_LIMIT:
        raise invalid_parameter(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided exceeded the 4KB limit. String "
            f"measured: {measured}"
        )
    return dict(variables)
