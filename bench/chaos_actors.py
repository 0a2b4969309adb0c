"""The actors of bench/chaos.py: the ledger the functions report deliveries to, the
server it kills and restarts, the clients that load it, and the faults themselves."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil

SQS_HEADERS = {
    "X-Amz-Target": "AmazonSQS.SendMessage",
    "Content-Type": "application/x-amz-json-1.0",
}


class Ledger:
    """Counts each id the functions report, however often (duplicates show as counts > 1)."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        lock = threading.Lock()
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    seen.update(body.decode().split("\n"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Tally:
    acked: dict[str, set[str]] = field(default_factory=lambda: {"queue": set(), "async": set()})
    refused: Counter[str] = field(default_factory=Counter)  # "kind: why" -> unacknowledged
    http_ok: int = 0
    http_failed: int = 0
    successes: list[float] = field(default_factory=list)  # when any request succeeded
    lock: threading.Lock = field(default_factory=threading.Lock)


class Server:
    """`skylift up` on a fixed port, so clients find it again after a restart."""

    def __init__(self, app: Path, port: int, log: Path) -> None:
        self.app, self.port, self.log = app, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"
        self.restarts: list[float] = []  # seconds from kill -9 to serving again
        self.orphans: list[str] = []  # processes of a killed server alive 2 s after the kill

    def start(self, timeout: float = 60.0) -> float:
        began = time.monotonic()
        command = [sys.executable, "-m", "skylift.cli", "up", str(self.app), "--port"]
        command += [str(self.port), "--quiet", "--fast-retries", "--no-reload"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skylift up exited {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/_skylift/health", timeout=1).status_code == 200:
                    return time.monotonic() - began
            time.sleep(0.05)
        raise RuntimeError(f"skylift up did not serve within {timeout} s; see {self.log}")

    def family(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.proc.pid).children(recursive=True)
        return []

    def zygotes(self) -> list[psutil.Process]:
        found = []
        for child in self.family():
            with contextlib.suppress(psutil.Error):
                if "skylift.runtime.zygote" in " ".join(child.cmdline()):
                    found.append(child)
        return found

    def instances(self) -> list[psutil.Process]:
        found = []
        for zygote in self.zygotes():
            with contextlib.suppress(psutil.Error):
                found += zygote.children(recursive=True)
        return found

    def kill9(self) -> None:
        assert self.proc is not None
        family = self.family()
        killed_at = time.monotonic()
        self.proc.kill()
        self.proc.wait()
        self.start()
        self.restarts.append(time.monotonic() - killed_at)
        time.sleep(max(0.0, killed_at + 2 - time.monotonic()))
        left = [p for p in family if _alive(p)]
        self.orphans += [_describe(p) for p in left]
        for process in left:  # ours to clean up: started by the server we started
            with contextlib.suppress(psutil.Error):
                process.kill()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _describe(process: psutil.Process) -> str:
    """Enough to tell what outlived its server: pid, name, state, parent."""
    with contextlib.suppress(psutil.Error), process.oneshot():
        return f"{process.pid} {process.name()} ({process.status()}, parent {process.ppid()})"
    return f"{process.pid} (gone)"


def _alive(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    return False


def load(server: Server, tally: Tally, stop: threading.Event, seed: int) -> None:
    """One client: a mix of HTTP requests, queue sends and async invokes, ~25 a second."""
    rng = random.Random(seed)
    queue_url = f"{server.url}/123456789012/orders"
    with httpx.Client(timeout=5) as client:
        n = 0
        while not stop.is_set():
            n += 1
            kind = rng.choice(("http", "queue", "async"))
            ident = f"{kind[0]}-{seed}-{n}"
            why = "no connection"
            try:
                if kind == "http":
                    answer = client.get(server.url + "/ping")
                elif kind == "queue":
                    body = json.dumps({"QueueUrl": queue_url, "MessageBody": ident})
                    answer = client.post(server.url + "/", content=body, headers=SQS_HEADERS)
                else:
                    answer = client.post(
                        server.url + "/2015-03-31/functions/work/invocations",
                        content=json.dumps({"id": ident}),
                        headers={"X-Amz-Invocation-Type": "Event"},
                    )
                why = str(answer.status_code)
            except httpx.TimeoutException:
                why = "timed out"
            except httpx.HTTPError:
                pass
            ok = why == {"http": "200", "queue": "200", "async": "202"}[kind]
            with tally.lock:
                if ok:
                    tally.successes.append(time.monotonic())
                    if kind != "http":
                        tally.acked[kind].add(ident)
                else:
                    tally.refused[f"{kind}: {why}"] += 1
                if kind == "http":
                    tally.http_ok += ok
                    tally.http_failed += not ok
            stop.wait(0.04)


def kill_one(processes: list[psutil.Process], rng: random.Random) -> bool:
    if not processes:
        return False
    with contextlib.suppress(psutil.Error):
        rng.choice(processes).kill()
        return True
    return False


def fill_disk(where: Path, seconds: float) -> None:
    """Take every free byte of the file system `where` is on, for `seconds`."""
    filler = where / "chaos-filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
        time.sleep(seconds)
    finally:
        os.close(fd)
        filler.unlink()


@contextlib.contextmanager
def small_disk(size: str = "64m") -> Iterator[Path | None]:
    """A tmpfs to fill (mounting needs root), or None where it cannot be had."""
    where = Path(tempfile.mkdtemp(prefix="skylift-chaos-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    try:
        yield where if mounted.returncode == 0 else None
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)
