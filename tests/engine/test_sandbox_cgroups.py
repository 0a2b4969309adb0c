"""An instance's cgroups, for real: what an instance started ends with it (cgroup2's
`cgroup.kill`, with the sandbox off too), a server killed with its whole process group
leaves nothing running, and cgroup v2's limits where the host delegates them."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import boto3
import pytest

from engine.processes import marked
from skylift.engine import cgroup_host
from skylift.runtime import sandbox_cgroups
from skylift.testing import ServerLog, serve

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}

APP = """
    import os, subprocess, sys, time
    from skylift import App

    app = App()

    def daemon(mark):
        if os.fork() == 0:  # a double fork into a session of its own, as a daemon does
            os.setsid()
            subprocess.Popen(["sleep", mark])
            os._exit(0)
        os.wait()

    @app.function(timeout=1)
    def escape(event, context):
        daemon(event["mark"])
        time.sleep(5)  # past the timeout: the instance is killed

    @app.function()
    def leave_behind(event, context):
        daemon(event["mark"])
        return os.getpid()

    @app.function(timeout=60)
    def busy(event, context):
        daemon(event["mark"])
        with open(event["pid_file"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(30)  # busy in its handler when the server is killed
"""


def cgroup2_base() -> str:
    """The folder this process may make cgroup2 groups in, or skip (the reason why)."""
    parent = cgroup_host.own_folder("cgroup2", "")
    if parent is None:
        pytest.skip("no cgroup2 hierarchy mounted here")
    if not os.access(parent, os.W_OK):
        pytest.skip(f"cgroup2 folder {parent} is not writable by this user")
    return parent


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def seen_within(mark: str, seconds: float) -> list[int]:
    """The processes running `sleep MARK`, waiting up to `seconds` for one: a daemon
    forked twice execs after its parent has already answered."""
    deadline = time.monotonic() + seconds
    while not (found := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def gone_within(pids_of: object, seconds: float) -> list[int]:
    """What `pids_of()` still lists after up to `seconds`; killed, so no test leaves any."""
    assert callable(pids_of)
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids_of() if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def test_cgroup_kill_ends_a_daemon_that_left_its_session():
    cgroup2_base()
    groups = cgroup_host.find(cgroup_host.server_tag(), limits=False)
    assert groups.v2 is not None
    settings = {"cgroup2": groups.v2}
    mark = str(900000 + os.getpid() % 10000)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # an instance: joins its group, starts a daemon, waits to be killed
        try:
            sandbox_cgroups.join(settings, os.getpid(), 128)
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execvp("sleep", ["sleep", mark])
                os._exit(0)
            os.wait()
            os.write(ready_w, b"x")
            time.sleep(60)
        finally:
            os._exit(1)
    try:
        os.close(ready_w)
        assert os.read(ready_r, 1) == b"x"
        assert seen_within(mark, 10), "the daemon started"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert marked(mark), "a kill of the instance's process alone leaves the daemon"
        sandbox_cgroups.kill(settings, pid)
        assert gone_within(lambda: marked(mark), 2) == []
        assert sandbox_cgroups.release(settings, pid)
    finally:
        groups.close()
    assert not os.path.exists(groups.v2)


def test_v2_limits_where_the_host_delegates_the_memory_controller(tmp_path):
    parent = cgroup2_base()
    offered = Path(parent, "cgroup.controllers").read_text().split()
    if "memory" not in offered:
        pytest.skip(
            f"no cgroup v2 memory controller here ({parent} offers {offered or 'none'}; "
            "on a hybrid host the memory controller is bound to cgroup v1)"
        )
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(
        textwrap.dedent("""
        from skylift import App
        app = App()

        @app.function(memory=128)
        def hog(event, context):
            return len([bytearray(16 * 1024 * 1024) for _ in range(64)])
        """)
    )
    log = ServerLog()
    with serve(str(app), log=log) as url:
        deadline = time.monotonic() + 10  # the sandbox line follows "serving on"
        while "sandbox:" not in log.text and time.monotonic() < deadline:
            time.sleep(0.02)
        if "memory limit by cgroup v2 (memory.max)" not in log.text:
            line = next((x for x in log.lines if "sandbox:" in x), "no sandbox line")
            pytest.skip(
                f"{parent} offers memory, but other processes share it, so the server "
                f"cannot enable it for its instances' groups: {line.strip()}"
            )
        lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
        answer = lam.invoke(FunctionName="hog", LogType="Tail")
        lam.close()
    assert answer.get("FunctionError") == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "Runtime.OutOfMemory", error
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "Memory Size: 128 MB\tMax Memory Used: 128 MB" in tail


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    app = tmp_path_factory.mktemp("cgroups")
    (app / "app.py").write_text(textwrap.dedent(APP))
    return app


def invoke(url: str, function: str, event: dict[str, str]) -> dict[str, object]:
    lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
    answer = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    lam.close()
    return {"payload": json.loads(answer["Payload"].read()), "error": answer.get("FunctionError")}


def test_with_the_sandbox_off_a_timed_out_instances_daemon_dies_with_it(app_dir):
    cgroup2_base()
    log = ServerLog()
    mark = str(uuid.uuid4().int % 10**9 + 10**9)
    with serve(str(app_dir), log=log, options=["--sandbox", "off"]) as url:
        answer = invoke(url, "escape", {"mark": mark})
        assert answer["error"] == "Unhandled"
        assert "cgroup.kill" in log.text  # the start line says what ends an instance
        assert gone_within(lambda: marked(mark), 5) == []


def test_with_the_sandbox_off_a_warm_instances_daemon_lives_until_the_instance_goes(app_dir):
    cgroup2_base()
    mark = str(uuid.uuid4().int % 10**9 + 10**9)
    with serve(str(app_dir), options=["--sandbox", "off"]) as url:
        invoke(url, "leave_behind", {"mark": mark})
        assert seen_within(mark, 10), "as on Lambda, a warm instance's background process runs on"
    assert gone_within(lambda: marked(mark), 5) == []


def start_in_own_group(
    app: Path, options: list[str], cgroup: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    """`skylift up` leading a process group of its own, as a shell's job does (in cgroup2
    group `cgroup`, if given, from its start)."""
    args = [sys.executable, "-m", "skylift.cli", "up", "--port", "0", *options, str(app)]
    if cgroup is not None:
        args = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *args]
    proc = subprocess.Popen(
        args, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if found := re.search(r"serving on (http://\S+)", line):
            threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
            return proc, found.group(1)
    raise AssertionError(f"skylift up did not start: exit {proc.wait()}")


def signal_if_alive(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def drain(stream: IO[str]) -> None:
    with stream:
        stream.read()


def descendants(root: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def busy_server(
    app_dir: Path, tmp_path: Path, cgroup: str | None = None
) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """A server with --sandbox off whose instance is busy in its handler: the server,
    the busy worker's pid, its daemon's mark."""
    mark = str(uuid.uuid4().int % 10**9 + 10**9)
    pid_file = tmp_path / "worker.pid"
    proc, url = start_in_own_group(app_dir, ["--sandbox", "off"], cgroup)
    try:
        lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
        event = {"mark": mark, "pid_file": str(pid_file)}
        lam.invoke(FunctionName="busy", InvocationType="Event", Payload=json.dumps(event))
        lam.close()
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield proc, int(pid_file.read_text()), mark
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def test_cgroup() -> Iterator[str]:
    """A cgroup2 group of the test's own, beside the test process's. A server sweeps the
    dead servers' folders beside its own, so one that any other skylift server on the
    host starts (another test run's) would end a killed server's leftovers before the
    test's own next start could: servers started in this group are out of its sight."""
    group = os.path.join(cgroup2_base(), f"tests-cgroups-{uuid.uuid4().hex[:12]}")
    os.mkdir(group)
    probe = subprocess.Popen(["sleep", "30"])
    try:
        Path(group, "cgroup.procs").write_text(str(probe.pid))
        refused = None
    except OSError as exc:
        refused = exc
    finally:
        probe.kill()
        probe.wait()
    if refused is not None:
        cgroup_host.remove(group)
        pytest.skip(f"cannot move a process into cgroup2 group {group}: {refused}")
    yield group
    sandbox_cgroups.kill_group(group, wait=5.0)  # a killed server's folder stays otherwise
    for folder, _, _ in os.walk(group, topdown=False):
        os.rmdir(folder)


@pytest.fixture
def killed_server(app_dir, tmp_path, test_cgroup):
    yield from busy_server(app_dir, tmp_path, test_cgroup)


def test_a_server_killed_with_its_process_group_leaves_no_process(killed_server):
    cgroup2_base()
    proc, worker, mark = killed_server
    everything = descendants(proc.pid) | set(seen_within(mark, 10))
    assert worker in everything and marked(mark)
    os.killpg(proc.pid, signal.SIGKILL)  # the server, and whatever shares its group
    proc.wait()
    # The zygote leads a group of its own: it sees its channel close and ends the rest.
    assert gone_within(lambda: everything, 5) == []


def test_the_next_start_ends_what_a_dead_server_left(killed_server, app_dir, test_cgroup):
    cgroup2_base()
    proc, worker, mark = killed_server
    everything = descendants(proc.pid) | set(seen_within(mark, 10))
    others = everything - {worker} - set(marked(mark))  # the zygote, mostly
    for pid in others:  # stopped first: a zygote seeing its server die would end the worker
        signal_if_alive(pid, signal.SIGSTOP)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for pid in others:
        signal_if_alive(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert alive(worker) and marked(mark), "busy in its handler, the worker outlived all"
    following, _ = start_in_own_group(app_dir, ["--sandbox", "off"], test_cgroup)
    try:
        # Killed before the port opened; a SIGKILLed process may take a moment to exit.
        assert gone_within(lambda: [worker, *marked(mark)], 5) == []
    finally:
        following.terminate()
        following.wait()
    assert gone_within(lambda: everything, 0) == []


@pytest.mark.parametrize("sandbox", ["off", "on"])
def test_a_start_leaves_a_live_servers_busy_instance_alone(
    killed_server, app_dir, tmp_path, test_cgroup, sandbox
):
    cgroup2_base()
    proc, worker, mark = killed_server  # not killed yet: alive, its worker busy
    assert seen_within(mark, 10)
    other_app = tmp_path / "other"  # an app of its own: one server per app's state
    other_app.mkdir()
    (other_app / "app.py").write_text((app_dir / "app.py").read_text())
    other, _ = start_in_own_group(other_app, ["--sandbox", sandbox], test_cgroup)
    other.terminate()
    other.wait()
    assert proc.poll() is None and alive(worker) and marked(mark)


def delegated(parent: str, controller: str, crowded: bool) -> dict[str, object]:
    """In a child process moved into cgroup `parent` (with a sleeper beside it when
    `crowded`): what `cgroup_host.find` made, where the server went, and whether an
    instance's group has `controller`'s files."""
    sleeper = subprocess.Popen(["sleep", "60"]) if crowded else None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            Path(parent, "cgroup.procs").write_text(str(os.getpid()))
            if sleeper:
                Path(parent, "cgroup.procs").write_text(str(sleeper.pid))
            found = cgroup_host.find(cgroup_host.server_tag(), limits=True, wanted=(controller,))
            seen: dict[str, object] = {
                "limits": found.v2_limits,
                "moved_from": found.moved_from,
                "own": Path("/proc/self/cgroup").read_text().splitlines()[-1],
                "base": found.v2,
            }
            instance = os.fork()
            if instance == 0:
                sandbox_cgroups.join({"cgroup2": found.v2}, os.getpid(), 128)
                os._exit(0)
            os.waitpid(instance, 0)
            group = sandbox_cgroups.folder(str(found.v2), instance)
            seen["instance_files"] = sorted(
                f for f in os.listdir(group) if f.startswith(controller + ".")
            )
            sandbox_cgroups.release({"cgroup2": found.v2}, instance)
            found.close()
            seen["after_close"] = Path("/proc/self/cgroup").read_text().splitlines()[-1]
            seen["left"] = os.path.exists(str(found.v2))
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        seen = json.loads(f.read() or "{}")
    os.waitpid(pid, 0)
    if sleeper:
        sleeper.kill()
        sleeper.wait()
    return seen


def test_delegation_moves_the_server_into_a_leaf_before_enabling_controllers():
    """The "no internal processes" rule, for real, with whichever controller the host's
    cgroup2 hierarchy offers (hugetlb on a hybrid host, where memory is bound to v1)."""
    own = cgroup2_base()
    offered = Path(own, "cgroup.controllers").read_text().split()
    if not offered:
        pytest.skip(f"{own} offers no cgroup2 controller to delegate")
    controller = offered[0]
    enabled_here = controller in Path(own, "cgroup.subtree_control").read_text().split()
    if not enabled_here and os.path.exists(os.path.join(own, "cgroup.type")):
        pytest.skip(f"{own} does not enable {controller} for its children")
    parent = os.path.join(own, f"skylift-test-{os.getpid()}")
    os.mkdir(parent)
    try:
        if not enabled_here:  # the root may hold processes and still enable it
            Path(own, "cgroup.subtree_control").write_text(f"+{controller}")
        seen = delegated(parent, controller, crowded=False)
        assert seen["limits"] == [controller]
        assert (
            seen["own"]
            == f"0::{parent[len(cgroup2_root(own)) :]}/{Path(str(seen['base'])).name}/server"
        )
        assert seen["instance_files"], f"the instance's group has no {controller} files"
        assert seen["after_close"] == f"0::{parent[len(cgroup2_root(own)) :]}"
        assert not seen["left"]  # the server went back and removed its folder
        crowded = delegated(parent, controller, crowded=True)
        assert crowded["limits"] == []  # another process shares the cgroup: no delegation
        assert crowded["own"].endswith(os.path.basename(parent))  # and the server stayed
    finally:
        for sub in sorted(Path(parent).glob("**/"), key=lambda p: -len(p.parts)):
            if sub != Path(parent):
                sub.rmdir()
        with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
            f.write("")
        os.rmdir(parent)
        if not enabled_here:
            Path(own, "cgroup.subtree_control").write_text(f"-{controller}")


def cgroup2_root(folder: str) -> str:
    """The cgroup2 mount point `folder` is under."""
    while os.path.exists(os.path.join(folder, "cgroup.type")):
        folder = os.path.dirname(folder)
    return folder


def test_a_zygote_in_its_init_phase_goes_with_a_killed_server(tmp_path):
    mark = str(uuid.uuid4().int % 10**9 + 10**9)
    app = tmp_path / "slow_init"
    app.mkdir()
    pid_file = tmp_path / "zygote.pid"
    (app / "app.py").write_text(
        textwrap.dedent(f"""
        import os, subprocess, time
        from skylift import App

        subprocess.Popen(["sleep", "{mark}"])  # started by the import, in the zygote's group
        with open({str(pid_file)!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)  # an import that blocks (a database that does not answer)
        app = App()

        @app.function()
        def hello(event, context):
            return "hi"
        """)
    )
    args = [sys.executable, "-m", "skylift.cli", "up", "--port", "0", str(app)]
    proc = subprocess.Popen(
        args,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        zygote = int(pid_file.read_text())
        assert seen_within(mark, 10) and alive(zygote)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the server and what shares its group
        proc.wait()
    assert gone_within(lambda: [zygote, *marked(mark)], 5) == []
