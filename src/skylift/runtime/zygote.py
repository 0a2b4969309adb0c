"""The zygote: imports user code once (Lambda's init phase), then forks warm workers.

Started by the supervisor as `python -m skylift.runtime.zygote FD`, where FD is one end
of a SOCK_SEQPACKET pair. Every message is one JSON object per packet; a fork answer
carries the worker's channel and its log memfd as SCM_RIGHTS.

Two modes, chosen by the first message:
- {"mode": "app", "code_dir", "module", "attribute"}: import a module holding an `App`;
  answer with the specs it declares. One zygote serves all of the app's functions.
- {"mode": "functions", "specs": [...]}: the SAM case. The function's environment is set
  before the import, as on Lambda, so import-time code sees its variables.

Both carry "environment" (the local credentials and endpoints, set before anything is
imported) and may carry "overrides" (`--env-vars`, per function).
"""

from __future__ import annotations

import array
import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from skylift.env_vars import Overrides, override
from skylift.errors import DeclarationError
from skylift.runtime import jsonlib as orjson
from skylift.runtime import logs, sandbox, sandbox_cgroups, sandbox_fork
from skylift.runtime.environ import (
    apply,
    lambda_environment,
    new_log_stream,
    shared_environment,
)
from skylift.runtime.faults import Fault, describe_exit, handler_not_found, import_fault
from skylift.runtime.init_watch import InitWatch
from skylift.runtime.wire import MAX_PACKET
from skylift.runtime.worker import Handler, serve
from skylift.spec import DEFAULT_RUNTIME, FunctionSpec


def send(ctl: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = orjson.dumps(message)
    if fds:
        ctl.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        ctl.send(data)


Loaded = dict[str, tuple[FunctionSpec, "Handler | Fault"]]


def load_app(
    code_dir: str,
    module: str,
    attribute: str | None,
    resources: dict[str, Any],
    overrides: Overrides | None = None,
) -> Loaded:
    from skylift.app import App  # imported here: only the zygote ever needs it
    from skylift.loader import TEMPLATE_NAMES

    mod = importlib.import_module(module)
    if attribute:
        app = getattr(mod, attribute, None)
        if not isinstance(app, App):
            raise DeclarationError(
                f"{module}:{attribute} is not a skylift App "
                f"(found {type(app).__name__}); point at the App object, e.g. {module}:app"
            )
    else:
        apps = [v for v in vars(mod).values() if isinstance(v, App)]
        if len(apps) != 1:
            hint = ""
            for name in TEMPLATE_NAMES:
                if not apps and os.path.isfile(os.path.join(code_dir, name)):
                    hint = f"; to load the SAM template beside it instead, pass --template {name}"
                    break
            raise DeclarationError(
                f"module {module!r} defines {len(apps)} skylift App objects; define exactly "
                f"one, or name it: {module}:ATTRIBUTE{hint}"
            )
        app = apps[0]
    resources["queues"] = app.queues
    resources["buckets"] = sorted(app.buckets)
    AFTER_FORK.extend(app.after_fork_hooks)
    return {
        spec.name: (override(spec, overrides or {}), fn)
        for spec, fn in app.resolve(code_dir, module)
    }


def load_functions(specs: list[FunctionSpec]) -> Loaded:
    found: Loaded = {}
    for spec in specs:
        apply(lambda_environment(spec, new_log_stream()))
        import_path(spec)
        logs.configure()  # the function's log format, before its import logs anything
        handler: Handler | Fault
        try:
            mod = importlib.import_module(spec.module)
        except Exception as exc:  # the init phase failed; every invocation will say so
            handler = import_fault(spec.module, exc)
        else:
            handler = getattr(mod, spec.attribute, None) or handler_not_found(
                spec.module, spec.attribute
            )
        found[spec.name] = (spec, handler)
    return found


def import_path(spec: FunctionSpec) -> None:
    """Put the function's PYTHONPATH (its Environment's, relative to its code) and its
    `python_path` (requirements, layers) on the import path, after its code folder.

    The interpreter read PYTHONPATH when it started, before the function's environment
    was set; on Lambda the runtime starts with it, so it takes effect there.
    """
    declared = spec.environment.get("PYTHONPATH", "")
    extra = [os.path.join(spec.code_dir, p) for p in declared.split(os.pathsep) if p]
    extra += [p for p in spec.python_path if p not in extra]
    at = sys.path.index(spec.code_dir) + 1 if spec.code_dir in sys.path else 0
    sys.path[at:at] = [p for p in extra if p not in sys.path]


AFTER_FORK: list[Callable[[], None]] = []  # the app's @app.after_fork hooks


def run_after_fork(handler: Handler | Fault) -> Handler | Fault:
    """Run the after-fork hooks in a new worker; a failing hook fails its invocations."""
    for hook in AFTER_FORK:
        try:
            hook()
        except Exception as exc:
            print(f"[ERROR] after_fork hook {hook.__name__} failed: {exc!r}", flush=True)
            return Fault(
                type(exc).__name__, f"after_fork hook {hook.__name__} failed: {exc}", fatal=True
            )
    return handler


def fork_worker(ctl: socket.socket, spec: FunctionSpec, handler: Handler | Fault) -> int | None:
    """Fork a worker for `spec`: its pid; None if the fork failed (reported as such)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    log_fd = os.memfd_create(f"skylift-{spec.name}", os.MFD_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    # Shared with the workers: a worker's collection must not write (copy) its pages. O(1).
    gc.freeze()
    forked_at = time.monotonic()
    namespaces = in_namespaces()
    # With namespaces, straight into a PID namespace of its own (runtime/sandbox_fork.py).
    try:
        pid = sandbox_fork.fork() if namespaces else os.fork()
    except OSError as exc:  # this start fails; the zygote and its instances serve on
        ours.close()
        theirs.close()
        os.close(log_fd)
        send(ctl, {"op": "fork_failed", "function": spec.name, "message": str(exc)})
        if isinstance(exc, sandbox_fork.MakerLost):
            raise  # this zygote cannot sandbox another instance: it exits (serve_forks)
        return None
    if pid == 0:  # the worker
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            ctl.close()
            ours.close()
            # Its own process group: a timeout or reap kills what the handler started too.
            # (In namespaces, its PID 1's: sandbox_fork.enter.)
            if not namespaces:
                os.setpgid(0, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            if namespaces and SANDBOX:
                sandbox_fork.enter(SANDBOX, spec.memory, spec.ephemeral_storage)
            else:  # its cgroups, if any
                sandbox.enter(SANDBOX, spec.memory, [], spec.ephemeral_storage)
            handler = run_after_fork(handler)
            serve(theirs, log_fd, spec, handler, forked_at)
        except SystemExit as exc:  # the handler called sys.exit(): the runtime exits
            sys.stdout.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    theirs.close()
    send(ctl, {"op": "forked", "function": spec.name, "pid": pid}, [ours.fileno(), log_fd])
    ours.close()
    os.close(log_fd)
    return pid


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    ctl.set_inheritable(False)  # never held by a sandbox's PID 1 (runtime/sandbox_fork.py)
    # A process group of our own: a SIGKILL of the server's group leaves us to see the
    # channel close and end the workers, which lead groups of their own (serve_forks).
    os.setpgid(0, 0)
    # Ctrl-C reaches the supervisor, which decides when a zygote (or a spare) stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    data = ctl.recv(MAX_PACKET)
    if not data:  # a spare nobody took (engine/zygote_process.py): nothing to do
        os._exit(0)
    setup = orjson.loads(data)
    code_dir = setup["code_dir"]
    os.chdir(code_dir)
    sys.path.insert(0, code_dir)
    started = time.monotonic()
    resources: dict[str, Any] = {}
    no_namespaces = prepare(setup, sandbox_fork.probe)
    if in_namespaces():
        sandbox_fork.enter_user_namespace()  # single-threaded still, no user code run yet
    watch = InitWatch(ctl)
    try:
        if setup["mode"] == "app":
            # Lambda sets these before the init phase; per-function ones come after fork.
            apply(shared_environment(code_dir, DEFAULT_RUNTIME))
            logs.configure()
            functions = load_app(
                code_dir, setup["module"], setup.get("attribute"), resources, setup.get("overrides")
            )
        else:
            functions = load_functions([FunctionSpec.from_dict(s) for s in setup["specs"]])
    except BaseException as exc:
        kind = "declaration" if isinstance(exc, DeclarationError) else "import"
        detail = str(exc) if kind == "declaration" else traceback.format_exc()
        send(ctl, {"op": "failed", "kind": kind, "message": detail})
        return
    finally:
        watch.stop()  # before any fork: a worker must not inherit a running thread
    if in_namespaces():
        sandbox_fork.start_maker()
    faults = {n: h.to_dict() for n, (_, h) in functions.items() if isinstance(h, Fault)}
    send(
        ctl,
        {
            "op": "ready",
            "resources": resources,
            "init_ms": (time.monotonic() - started) * 1000,
            "specs": [spec.to_dict() for spec, _ in functions.values()],
            "faults": faults,
            "namespaces": no_namespaces is None if sandboxed() else None,
            "namespaces_problem": no_namespaces,
        },
    )
    serve_forks(ctl, functions)
    # Over: no interpreter teardown of the user's modules (100+ ms for boto3 and
    # friends, which the supervisor would wait for). Lambda runs no atexit hooks either.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# What workers enter (runtime/sandbox.py); None: nothing. With the sandbox off, only a
# cgroup2 group each ({"off": True, ...}), so that what an instance starts ends with it.
SANDBOX: dict[str, Any] | None = None


def sandboxed() -> bool:
    return bool(SANDBOX and not SANDBOX.get("off"))


def in_namespaces() -> bool:
    """Whether workers are forked into namespaces of their own (probed to work)."""
    return bool(SANDBOX and not SANDBOX.get("off") and SANDBOX.get("namespaces"))


def prepare(setup: dict[str, Any], probe: Callable[[], str | None] = sandbox.probe) -> str | None:
    """What the runtime does before any user code: the platform's environment (local
    credentials, endpoints), the root log handler (so `basicConfig()` adds none), and
    the sandbox's namespace probe (`probe`: the zygote's way, or a lone instance's).
    Returns why namespaces are unavailable, if they are."""
    global SANDBOX
    apply(setup.get("environment", {}))
    logs.install()
    SANDBOX = setup.get("sandbox")
    if SANDBOX and SANDBOX.get("namespaces"):
        reason = probe()
        if reason is not None:
            SANDBOX = {**SANDBOX, "namespaces": False}
            return reason
    return None


def serve_forks(ctl: socket.socket, functions: Loaded) -> None:
    children: set[int] = set()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # The supervisor decides when we stop; a terminal's Ctrl-C reaches it, not us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(ctl, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj == wake_r:
                    os.read(wake_r, 4096)
                    reap(ctl, children)
                    continue
                data = ctl.recv(MAX_PACKET)
                if not data:
                    return
                request = orjson.loads(data)
                if request["op"] == "fork":
                    spec, handler = functions[request["function"]]
                    if (pid := fork_worker(ctl, spec, handler)) is not None:
                        children.add(pid)
                elif request["op"] == "kill" and request["pid"] in children:
                    # Only our own, unreaped children: their pids cannot have been reused.
                    kill_group(request["pid"])
                elif request["op"] == "exit":
                    return
    except (ConnectionResetError, BrokenPipeError, sandbox_fork.MakerLost):
        pass  # the supervisor stopped with a request in flight; or no more namespaces
    finally:
        for pid in children:
            kill_group(pid)
            if SANDBOX:  # the server may be gone: nobody else will
                sandbox_cgroups.kill(SANDBOX, pid)
        sandbox_fork.end_all()  # and with each, everything left in its PID namespace
        # Within the second the server gives us to exit (engine/zygote.py's `close`).
        reap_killed(children | set(sandbox_fork.end_adopted()), timeout=0.8)


def reap_killed(pids: set[int], timeout: float) -> None:
    """Reap the workers just killed, waiting at most `timeout` seconds. A worker's PID
    namespace ends only once the worker is reaped, and its PID 1 waits for that; left to
    the host's PID 1 (ours once we are gone), that may take seconds, or never happen."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in list(pids):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            except ChildProcessError:
                pass
            pids.discard(pid)
        if not pids or time.monotonic() > deadline:
            return
        time.sleep(0.005)


LEFTOVERS: set[int] = set()  # workers whose cgroup folders were still busy when reaped


def kill_group(pid: int) -> None:
    """Kill a worker and every process it started (it leads its own process group, or,
    in namespaces, is PID 2 of its own)."""
    if sandbox_fork.kill(pid):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap(ctl: socket.socket, children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid not in children:
            continue
        children.discard(pid)
        kill_group(pid)  # subprocesses a worker left behind die with it, as with a sandbox
        sandbox_fork.end(pid)  # and, with its PID namespace, whatever left the group
        described = describe_exit(os.waitstatus_to_exitcode(status))
        if SANDBOX:
            if sandbox.oom_killed(SANDBOX, pid) and described == "signal: killed":
                described += sandbox.OOM_SUFFIX
            sandbox_cgroups.kill(SANDBOX, pid)  # and what left its process group
            if not sandbox.release(SANDBOX, pid):
                LEFTOVERS.add(pid)
        for left in list(LEFTOVERS):
            if SANDBOX and sandbox.release(SANDBOX, left):
                LEFTOVERS.discard(left)
        try:
            send(ctl, {"op": "exited", "pid": pid, "status": described})
        except OSError:
            return


if __name__ == "__main__":
    main()
