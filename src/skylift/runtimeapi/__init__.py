"""Instances that are any process speaking the Lambda Runtime API (custom runtimes,
`provided.al2023` bootstraps, `python -m awslambdaric`), each with its own Runtime API
server on 127.0.0.1."""

from skylift.runtimeapi.instance import RuntimeApiInstance
from skylift.runtimeapi.server import Invocation, Outcome, RuntimeApiServer

__all__ = ["Invocation", "Outcome", "RuntimeApiInstance", "RuntimeApiServer"]
