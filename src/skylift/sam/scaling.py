"""A SAM function's concurrency and sizes: `ReservedConcurrentExecutions` (its limit),
`ProvisionedConcurrencyConfig` (instances kept warm) and `EphemeralStorage` (/tmp)."""

from __future__ import annotations

from typing import Any

from skylift.sam.async_config import Resolving
from skylift.spec import DEFAULT_TMP, MAX_TMP


def reserved_concurrency(function: Resolving, reserved: int | None) -> int | None:
    """ReservedConcurrentExecutions, already read as an integer: 0 or more, or None.

    0 loads and turns the function off, as on AWS: every invocation is throttled.
    """
    if reserved is not None and reserved < 0:
        raise function.fail(
            f"ReservedConcurrentExecutions {reserved} is negative: set it to 0 (the "
            "function is off) or more, or remove it"
        )
    return reserved


def provisioned_concurrency(function: Resolving, properties: dict[str, Any]) -> int:
    """ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions: kept warm."""
    config = function.resolve(
        properties.get("ProvisionedConcurrencyConfig"), "ProvisionedConcurrencyConfig"
    )
    if config is None:
        return 0
    value = config.get("ProvisionedConcurrentExecutions") if isinstance(config, dict) else None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise function.fail(
            "ProvisionedConcurrencyConfig needs ProvisionedConcurrentExecutions: a whole "
            f"number >= 0, got {value!r}"
        )
    return value


def ephemeral_storage(function: Resolving, properties: dict[str, Any]) -> int:
    """EphemeralStorage.Size: MB of /tmp, 512 (the default) to 10,240, as on Lambda."""
    config = function.resolve(properties.get("EphemeralStorage"), "EphemeralStorage")
    if config is None:
        return DEFAULT_TMP
    size = config.get("Size") if isinstance(config, dict) else None
    size = function.resolve(size, "EphemeralStorage.Size")
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)  # a parameter's value is text
    if isinstance(size, bool) or not isinstance(size, int) or not DEFAULT_TMP <= size <= MAX_TMP:
        raise function.fail(
            f"EphemeralStorage needs Size: the MB of /tmp, {DEFAULT_TMP} to {MAX_TMP}, got {size!r}"
        )
    return size
