"""The SAM front door: an AWS SAM template loaded into `FunctionSpec`s and `Resources`.

`loading` reads the template; `cfn_yaml` parses it and resolves intrinsics; `events`,
`resources`, `async_config`, `scaling` and `log_config` read one part each.

>>> from skylift.sam import load
>>> specs, resources = load("template.yaml")  # doctest: +SKIP
"""

from skylift.sam.loading import SERVERLESS_FUNCTION, load, load_template

__all__ = ["SERVERLESS_FUNCTION", "load", "load_template"]
