"""skylift: AWS-Lambda-compatible functions, served on your own machine."""

from typing import TYPE_CHECKING

from skylift.errors import DeclarationError, LoadError, SkyliftError

if TYPE_CHECKING:
    from skylift.app import App
    from skylift.spec import FunctionSpec, HttpRoute

__all__ = ["App", "DeclarationError", "FunctionSpec", "HttpRoute", "LoadError", "SkyliftError"]
__version__ = "0.1.0"

# Imported on first use (PEP 562): the command line, the zygote and every instance import
# `skylift.*` modules, and most never need the decorator front door.
_LAZY = {"App": "skylift.app", "FunctionSpec": "skylift.spec", "HttpRoute": "skylift.spec"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'skylift' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
