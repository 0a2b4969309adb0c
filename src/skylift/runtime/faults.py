"""AWS's error payloads for the function side: user exceptions and runtime faults."""

from __future__ import annotations

import signal
import traceback
from types import TracebackType
from typing import Any

_OWN_FILES = ("/skylift/runtime/",)

SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
}


def describe_exit(returncode: int) -> str:
    """A process's end in the words Lambda's Go runtime uses ("signal: killed"), from its
    return code as `subprocess` and `os.waitstatus_to_exitcode` give it (-N: signal N)."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        sig = signal.Signals(-returncode)
    except ValueError:  # a real-time signal has no name; Go says "signal 35"
        return f"signal: signal {-returncode}"
    return "signal: " + (SIGNAL_NAMES.get(sig) or sig.name.lower())


def error_payload(
    message: str, error_type: str, request_id: str, stack: list[str] | None = None
) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack or [],
    }


def exception_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The payload for an exception a handler raised, its traceback trimmed to user code."""
    return error_payload(str(exc), type(exc).__name__, request_id, _user_stack(exc.__traceback__))


def _user_stack(tb: TracebackType | None) -> list[str]:
    frames = traceback.extract_tb(tb)
    # Drop skylift's own frames above the handler, as the Lambda runtime drops bootstrap.py.
    while frames and any(own in frames[0].filename for own in _OWN_FILES):
        frames.pop(0)
    return traceback.format_list(frames)


class Fault(Exception):
    """Raised in place of a handler that could not be loaded (the init phase failed)."""

    def __init__(
        self,
        error_type: str,
        message: str,
        stack: list[str] | None = None,
        *,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []
        # Fatal: this instance is broken (not the code): answer, then exit to be replaced.
        self.fatal = fatal

    def payload(self, request_id: str) -> dict[str, Any]:
        return error_payload(self.message, self.error_type, request_id, self.stack)

    def to_dict(self) -> dict[str, Any]:
        return {
            "errorType": self.error_type,
            "errorMessage": self.message,
            "stackTrace": self.stack,
        }


def import_fault(module: str, exc: BaseException) -> Fault:
    """Classify an exception raised while importing a handler module, as Lambda does."""
    if isinstance(exc, SyntaxError):
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        return Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module}': {exc}", trace
        )
    if isinstance(exc, ImportError):
        return Fault("Runtime.ImportModuleError", f"Unable to import module '{module}': {exc}")
    return Fault(type(exc).__name__, str(exc), _user_stack(exc.__traceback__))


def handler_not_found(module: str, attribute: str) -> Fault:
    return Fault("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module}'")
