"""skylift: AWS-Lambda-compatible functions, served on your own machine."""

from skylift.app import App
from skylift.errors import DeclarationError, LoadError, SkyliftError
from skylift.spec import FunctionSpec, HttpRoute

__all__ = ["App", "DeclarationError", "FunctionSpec", "HttpRoute", "LoadError", "SkyliftError"]
__version__ = "0.1.0"
