"""A zygote's sandboxed instance is one process of the app's plus a PID 1 that holds
nothing of it: no waiting parent (runtime/sandbox_fork.py). Real zygotes, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from skylift.engine.platform import Platform
from skylift.loader import resolve_target

APP = """
import os, subprocess
from skylift import App

app = App()


@app.function(timeout=60)  # a slow, busy machine must not time it out
def probe(event, context):
    if event.get("daemon"):  # a double fork that leaves the process group and session
        if os.fork() == 0:
            os.setsid()
            subprocess.Popen(["sleep", "876543"])
            os._exit(0)
    return os.getpid()
"""


def status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def running(pid: int) -> bool:
    try:
        return status(pid)["State"][0] != "Z"
    except OSError:  # gone, or going
        return False


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def in_namespace_of(pid: int) -> list[int]:
    """The host's pids of every process in `pid`'s PID namespace."""
    ns = os.readlink(f"/proc/{pid}/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def sleepers() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes() == b"sleep\x00876543\x00":
                    found.append(int(entry))
            except OSError:
                continue
    return found


def gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p in pids if running(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def run(app: Path, scenario: Any) -> Any:
    async def main() -> Any:
        platform = await Platform.start(resolve_target(str(app), None), sandbox=True, policy=None)
        try:
            line = platform.sandbox_line() or ""
            if "own PID/mount/IPC namespaces" not in line:
                pytest.skip(f"no namespaces here: {line}")
            return await scenario(platform.pools["probe"])
        finally:
            await platform.close()

    return asyncio.run(main())


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_an_instance_is_the_zygotes_child_and_its_pid_1_holds_nothing_of_the_app(app):
    async def scenario(pool: Any) -> dict[str, Any]:
        instance = await pool._start()
        answer = await instance.invoke("look", b"{}")
        seen = {"pid": instance.pid, "answer": answer}
        zygote = int(status(instance.pid)["PPid"])
        seen["zygote_cmdline"] = Path(f"/proc/{zygote}/cmdline").read_bytes()
        seen["together"] = sorted(in_namespace_of(instance.pid))
        seen["nspid"] = {p: status(p)["NSpid"].split()[-1] for p in seen["together"]}
        seen["rss_kb"] = {p: int(status(p)["VmRSS"].split()[0]) for p in seen["together"]}
        seen["zygote_children"] = children(zygote)
        instance.kill()
        instance.close()
        pool.size -= 1
        return seen

    seen = run(app, scenario)
    pid = seen["pid"]
    assert b"skylift.runtime.zygote" in seen["zygote_cmdline"]  # no parent in between
    init = next(p for p, n in seen["nspid"].items() if n == "1")
    assert seen["nspid"] == {init: "1", pid: "2"}  # the two, nothing else
    assert init not in seen["zygote_children"]  # the maker's child, not a copy of the app
    # A copy of nothing but a stack: the app's interpreter alone is several MiB.
    assert seen["rss_kb"][init] < 1024 < seen["rss_kb"][pid]
    assert gone_within([pid, init], 5) == []  # killed: its PID 1 went with it


def test_what_an_instance_started_ends_with_it_even_after_its_zygote(app):
    async def scenario(pool: Any) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        first = await pool._start()
        await first.invoke("daemon", b'{"daemon": true}')
        deadline = time.monotonic() + 5
        while not sleepers() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        seen["daemon"] = sleepers()
        if not running(first.pid):
            raise AssertionError(f"ended: {await first.parent.exit_status(first.pid, 2)}")
        namespace = in_namespace_of(first.pid)
        first.kill()  # the instance, not the daemon it left behind: its namespace
        first.close()
        pool.size -= 1
        seen["ended"] = gone_within(namespace + seen["daemon"], 5)
        second = await pool._start()
        await second.invoke("daemon", b'{"daemon": true}')
        while not sleepers() and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.05)
        namespace = in_namespace_of(second.pid) + sleepers()
        zygote = int(status(second.pid)["PPid"])
        os.kill(zygote, signal.SIGKILL)  # the zygote dies, as by the OOM killer
        await asyncio.sleep(0.5)
        # Its warm instance serves on, as it did before the sandbox.
        seen["after_zygote"] = (await second.invoke("again", b"{}")).payload
        seen["still"] = gone_within(namespace, 0)
        second.kill()  # no zygote to ask: the supervisor kills it; its namespace follows
        second.close()
        pool.size -= 1
        seen["left"] = gone_within(namespace, 5)
        return seen

    seen = run(app, scenario)
    for pid in sleepers():  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert seen["daemon"] and seen["ended"] == []
    assert seen["after_zygote"] == b"2" and len(seen["still"]) == 4  # PID 1, 2, the daemon's
    assert seen["left"] == []


def makers(zygote: int) -> list[int]:
    """The zygote's namespace maker(s) (its PID 1s are the maker's children, not its)."""
    found = []
    for pid in children(zygote):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "skylift-ns-init":
                found.append(pid)
        except OSError:
            continue
    return found


def orphaned_inits() -> list[int]:
    """PID 1s (and makers) that no zygote or maker holds: the host's init adopted them."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                named = Path(f"/proc/{entry}/comm").read_text().strip() == "skylift-ns-init"
                if named and status(int(entry))["PPid"] == "1":
                    found.append(int(entry))
            except OSError:
                continue
    return found


def done_with(pool: Any, *instances: Any) -> None:
    for instance in instances:
        instance.kill()
        instance.close()
        pool.size -= 1


def test_a_dead_maker_fails_one_start_and_a_new_zygote_serves_the_next(app):
    """The maker killed after instances started: the namespace it made ahead serves one
    start; the next fails at once with the reason (a maker forked now would land in an
    instance's PID namespace), that zygote ends with its instances, and the start after
    it comes from a new zygote, with its own maker, in a namespace nobody else is in."""
    from skylift.errors import LoadError

    async def scenario(pool: Any) -> dict[str, Any]:
        warm = await pool._start()
        zygote = int(status(warm.pid)["PPid"])
        [maker] = makers(zygote)
        seen: dict[str, Any] = {"answers": [], "made": children(maker)}
        # Its PID 1s hold a copy of its end of the channel: the zygote sees no end of file.
        os.kill(maker, signal.SIGKILL)
        await asyncio.sleep(0.2)
        started = [warm]
        for _ in range(2):  # the namespace it made ahead (if it had made it), then none
            try:
                started.append(await asyncio.wait_for(pool._start(), 30))
            except LoadError as exc:
                seen["error"] = str(exc)
                break
            seen["answers"].append((await started[-1].invoke("ahead", b"{}")).payload)
        deadline = time.monotonic() + 10
        while running(zygote) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        seen["old_zygote"] = running(zygote)
        done_with(pool, *started)
        fresh = await asyncio.wait_for(pool._start(), 30)
        new_zygote = int(status(fresh.pid)["PPid"])
        seen["fresh"] = (await fresh.invoke("fresh", b"{}")).payload
        seen["new_makers"] = makers(new_zygote)
        seen["namespace"] = len(in_namespace_of(fresh.pid))  # its PID 1 and itself
        done_with(pool, fresh)
        return seen

    before = set(orphaned_inits())
    seen = run(app, scenario)
    # One it made just before it was killed, never handed over, was the zygote's to end
    # (found by its parent, the host's init, if the maker made it after we looked).
    made = seen["made"] + [p for p in orphaned_inits() if p not in before]
    left = gone_within(made, 5)
    assert left == [], "a PID 1 of the killed maker outlived the zygote and the platform"
    assert seen["answers"] in ([], [b"2"]) and seen["fresh"] == b"2"
    assert "namespace maker has gone" in seen.get("error", ""), seen
    assert seen["old_zygote"] is False and len(seen["new_makers"]) == 1
    assert seen["namespace"] == 2


def test_a_start_the_zygote_cannot_fork_fails_alone_and_the_zygote_serves_on(app):
    from skylift.errors import LoadError

    async def scenario(pool: Any) -> dict[str, Any]:
        warm = await pool._start()
        zygote = int(status(warm.pid)["PPid"])
        [maker] = makers(zygote)
        os.kill(maker, signal.SIGSTOP)  # alive, but makes no namespace
        seen: dict[str, Any] = {"error": ""}
        started = [warm]
        try:
            for _ in range(2):  # the namespace it made ahead, if it did, then none
                try:
                    started.append(await asyncio.wait_for(pool._start(), 30))
                except LoadError as exc:
                    seen["error"] = str(exc)
                    break
            seen["warm"] = (await warm.invoke("warm", b"{}")).payload
        finally:
            os.kill(maker, signal.SIGCONT)
        started.append(await asyncio.wait_for(pool._start(), 30))
        seen["after"] = (await started[-1].invoke("after", b"{}")).payload
        seen["zygote"] = running(zygote)
        done_with(pool, *started)
        return seen

    seen = run(app, scenario)
    assert "namespace maker did not answer" in seen["error"], seen
    assert seen["warm"] == b"2" and seen["after"] == b"2" and seen["zygote"]


def pidfds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
        except OSError:
            continue
    return count


def test_closing_the_platform_closes_the_pidfds_of_its_instances(app):
    async def scenario(pool: Any) -> int:
        instances = [await pool.acquire() for _ in range(3)]
        for instance in instances:
            pool.release(instance)  # idle when the platform closes
        return pidfds()

    before = pidfds()
    during = run(app, scenario)
    assert during >= before + 3  # one per instance
    assert pidfds() == before
