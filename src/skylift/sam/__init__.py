"""The SAM front door: an AWS SAM template loaded into `FunctionSpec`s and `Resources`.

`loading` reads the template; `cfn_yaml` parses it and resolves intrinsics; `events`,
`resources`, `async_config`, `scaling` and `log_config` read one part each.

>>> from skylift.sam import load
>>> specs, resources = load("template.yaml")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skylift.sam.loading import SERVERLESS_FUNCTION, load, load_template

__all__ = ["SERVERLESS_FUNCTION", "load", "load_template"]


def __getattr__(name: str) -> object:
    # Imported on first use: `skylift.sam.parameters` (the command line's
    # --parameter-overrides) must not load the whole template reader.
    if name in __all__:
        from skylift.sam import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'skylift.sam' has no attribute {name!r}")
