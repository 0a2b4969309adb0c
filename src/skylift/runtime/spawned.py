"""A fresh interpreter per instance (`spawn=True`): imports the code itself, then serves.

Started by the supervisor (`skylift.engine.spawner`) as
`python -m skylift.runtime.spawned CHANNEL_FD LOG_FD`, its own session leader, with fds
1 and 2 already on the log memfd, and its setup as one JSON object in the
`SKYLIFT_SPAWN_SETUP` variable (removed before user code runs). Two modes, as a zygote's:
- {"mode": "app", "code_dir", "module", "attribute", "spec", "spawned_at"}: import the
  module holding an `App` and serve the function `spec` names. Only the shared Lambda
  variables are set before the import; the function's own come after, as with a fork.
- {"mode": "functions", "code_dir", "spec", "spawned_at"}: the SAM case; the function's
  environment is set before the import.

Everything the import opens (threads, sockets, connections) belongs to this process:
the reason to spawn rather than fork. `@app.after_fork` hooks run here too, once, before
the first invocation: in both modes a hook runs once in every new instance.

With the sandbox on it first enters it (`sandbox.enter`), as a forked worker does: the
pid the supervisor knows is the waiting parent, the import and the invocations happen in
the sandboxed process. Once imported it writes `READY` on the channel (the init phase is
over: the first invocation's timeout starts after it), then runs the same loop as a
forked worker.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from skylift.runtime import jsonlib as orjson
from skylift.runtime import logs, sandbox, zygote
from skylift.runtime.environ import apply, shared_environment
from skylift.runtime.faults import Fault, handler_not_found, import_fault
from skylift.runtime.worker import Handler, serve
from skylift.runtime.zygote import load_app, load_functions, prepare, run_after_fork
from skylift.spec import DEFAULT_RUNTIME, FunctionSpec

SETUP_VARIABLE = "SKYLIFT_SPAWN_SETUP"
READY = b"\x01"  # the one byte that ends the init phase; invocation frames follow


def main() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    log_fd = int(sys.argv[2])
    setup = orjson.loads(os.environ.pop(SETUP_VARIABLE))
    # The handler's subprocesses inherit fds 1 and 2, never the channel.
    os.set_inheritable(channel.fileno(), False)
    os.set_inheritable(log_fd, False)
    spec = FunctionSpec.from_dict(setup["spec"])
    problem = prepare(setup)
    if problem is not None:  # the supervisor's start line cannot know: say it here
        print(f"[skylift] no namespaces for this instance: {problem}", file=sys.stderr)
    if spec.debug == "pdb":
        log_fd = os.dup(1)  # the terminal: every invocation's output and pdb stay there
    # Before any thread (a user namespace needs a single-threaded process) and any import.
    sandbox.enter(zygote.SANDBOX, spec.memory, [channel.fileno(), log_fd], spec.ephemeral_storage)
    sandboxed = bool(zygote.SANDBOX and zygote.SANDBOX.get("namespaces"))
    threading.Thread(
        target=exit_with_supervisor,
        args=(channel.fileno(), sandboxed),
        name="skylift-watch",
        daemon=True,
    ).start()
    if spec.debug is not None and spec.debug != "pdb":
        attach_debugger(spec.debug)  # after the sandbox: debugpy starts threads
    try:
        handler = run_after_fork(load(setup, spec))
        sys.stdout.flush()
        sys.stderr.flush()
        channel.sendall(READY)
        serve(channel, log_fd, spec, handler, setup["spawned_at"])
    except SystemExit as exc:  # sys.exit() at import or in the handler: the runtime exits
        sys.stdout.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(1)


def attach_debugger(debug: str) -> None:
    """Listen for the editor on loopback (`debugpy:PORT`) and wait until it attaches,
    before the init phase: breakpoints anywhere in the code hit."""
    import debugpy  # an optional dependency; `skylift` checked it is installed

    debugpy.listen(("127.0.0.1", int(debug.split(":", 1)[1])))
    debugpy.wait_for_client()


def load(setup: dict[str, Any], spec: FunctionSpec) -> Handler | Fault:
    """Import the code (the init phase) and return the handler, or the fault to answer."""
    code_dir = setup["code_dir"]
    os.chdir(code_dir)
    sys.path.insert(0, code_dir)
    if setup["mode"] == "functions":
        return load_functions([spec])[spec.name][1]
    module = setup["module"]
    # Lambda sets these before the init phase; the function's own come in `serve`.
    apply(shared_environment(code_dir, DEFAULT_RUNTIME))
    logs.configure()
    try:
        functions = load_app(code_dir, module, setup.get("attribute"), {})
    except Exception as exc:  # the init phase failed; every invocation will say so
        return import_fault(module, exc)
    found = functions.get(spec.name)
    return found[1] if found else handler_not_found(spec.module, spec.attribute)


def exit_with_supervisor(channel: int, sandboxed: bool) -> None:
    """Kill this instance and what it started once the supervisor closes the channel.

    A forked worker's zygote does this for it; without it a spawned instance busy in a
    handler would run on after the server stopped (or died). In a sandbox this process
    only ends itself: its waiting parent outside the namespace then ends the namespace's
    PID 1, and so everything in it. (A process-group kill from in here would reach that
    parent too, the kernel does not filter a group by namespace, and leave PID 1, which
    ignores signals from inside, running for good.)
    """
    poller = select.poll()
    poller.register(channel, select.POLLRDHUP)  # the peer closed; reads nothing
    while not poller.poll():
        pass
    if sandboxed:
        os._exit(1)
    os.killpg(0, signal.SIGKILL)  # it leads its own process group


if __name__ == "__main__":
    main()
