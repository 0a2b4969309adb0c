"""Run any command as a sandboxed instance: the Runtime API driver's way in.

A Runtime API instance (`runtime_command`: a `provided.al2023` bootstrap, awslambdaric)
is not a fork of a Python zygote, so this small program stands first:

    python -I .../skylift/runtime/sandbox_exec.py SETTINGS MEMORY_MB TMP_MB -- COMMAND...

It enters the sandbox as a forked worker does (`sandbox.enter`: cgroups, namespaces, a
PID 1, read-only mounts, its own /tmp), then, in the serving process, executes COMMAND in
place of itself, so the runtime is PID 2 of its namespace with the same fds, directory
and environment. This process stays outside as the waiting parent and exits as the
runtime did. It runs as a file, not `-m`, so the `skylift` package's `__init__` (the
whole App layer) is not imported: the sandbox costs this interpreter's start, no more.
"""

from __future__ import annotations

import json
import os
import sys
import types


def main(argv: list[str]) -> None:
    settings = json.loads(argv[0])
    memory_mb, tmp_mb = int(argv[1]), int(argv[2])
    command = argv[argv.index("--") + 1 :]
    from skylift.runtime import sandbox

    if settings.get("namespaces"):
        reason = sandbox.probe()
        if reason is not None:  # the supervisor's log says so; the function's, here
            print(f"[skylift] no namespaces for this instance: {reason}", file=sys.stderr)
            settings["namespaces"] = False
    sandbox.enter(settings, memory_mb, [], tmp_mb)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"[skylift] cannot start {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        os._exit(127)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    package = types.ModuleType("skylift")
    package.__path__ = [os.path.dirname(here)]
    sys.modules.setdefault("skylift", package)
    main(sys.argv[1:])
