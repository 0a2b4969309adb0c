"""Queues end to end on Redis with 1, 2 and 3 `skylift up` nodes, beside one node on
SQLite, interleaved in one run; with each node's and the Redis server's own CPU (/proc).

Two handlers, each run on every configuration:

- CPU-bound: the handler appends each batch to a file and returns (the function may run
  up to 20 batches at once per node, the trigger's default). Its throughput is bound by
  CPU: on one machine every node shares the same cores, so nodes cannot add throughput.
- Waiting: the handler first waits `--io-wait` seconds per batch (standing in for a
  database call), and each node runs at most `--io-concurrency` batches at once (the
  trigger's MaximumConcurrency): a node's capacity is concurrency x 10 / wait messages
  per second, and nodes add capacity while CPU is left, as nodes on separate machines do.

Each configuration: the same app (queue `work`, trigger with batches of 10), messages of
100 bytes sent with SendMessageBatch by one sender process per node (httpx, 16
connections), spread evenly over the nodes; the clock runs from the senders' start
(started and ready beforehand) until the handlers have seen every message. Redis is a
redis-server of the bench's own (`appendonly yes`, `appendfsync everysec`) on a free
port, or `--redis URL` (a local server: its CPU is read from /proc of the pid its `INFO
server` gives, so other clients' work counts too).

    python bench/cluster_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import free_port
from cluster_report import section
from proctree import cpu_seconds, process_cpu
from report import write_section

# The handler appends each batch to a file named in its source (an instance sees neither
# the host's environment nor, once copied, its app folder's path).
APP = """
import time
from skylift import App

app = App()
app.declare_queue("work", visibility_timeout=30)


@app.queue("work", batch_size=10, max_concurrency={concurrency})
def work(event, context):
    if {wait}:
        time.sleep({wait})  # a database call, say: the instance waits, using no CPU
    with open({done!r}, "a") as f:
        f.write("".join(r["body"] + "\\n" for r in event["Records"]))
"""
SENDERS = 16  # concurrent connections per node


@dataclass
class Handler:
    """What the function does with a batch, and how many batches a node runs at once."""

    name: str
    messages: int  # in all, split over the nodes
    wait: float = 0.0  # seconds per batch
    concurrency: int | None = None  # per node; None: the trigger's default (20)
    # True: the messages wait in the queue before the nodes start, and the clock runs
    # while every node is up (the nodes' rate, whatever the senders could do meanwhile).
    backlog: bool = False

    def capacity(self, nodes: int) -> float | None:
        """Messages per second the nodes can take at most, if bound by waiting."""
        if not self.wait or self.concurrency is None:
            return None
        return nodes * self.concurrency * 10 / self.wait


@dataclass
class Result:
    rate: float  # messages per second
    node_cpu: list[float]  # cores each node's processes used over the run
    redis_cpu: float | None  # cores the Redis server used over the run


@dataclass
class Measured:
    handler: Handler
    results: dict[str, list[Result]] = field(default_factory=dict)


def send(url: str, messages: int) -> subprocess.Popen[str]:
    """Start a process that will send `messages` to the node at `url` with
    SendMessageBatch over `SENDERS` connections (`sender_main`) once told to go."""
    command = [sys.executable, __file__, "--send", url, "--messages", str(messages)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc


def ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"a sender did not start: exit {proc.wait()}")


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.close()


def finish(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    out = proc.stdout.read()  # to its end: the sender has exited
    if proc.wait(300):
        raise RuntimeError(f"some sends failed: {out}")


def sender_main(url: str, messages: int) -> None:
    import asyncio
    import json

    import httpx

    entries = [{"Id": str(i), "MessageBody": "x" * 100} for i in range(10)]
    body = json.dumps({"QueueUrl": f"{url}/123456789012/work", "Entries": entries})
    headers = {
        "X-Amz-Target": "AmazonSQS.SendMessageBatch",
        "Content-Type": "application/x-amz-json-1.0",
    }
    failures: list[str] = []
    left = messages // 10

    async def connection() -> None:
        nonlocal left
        async with httpx.AsyncClient(timeout=60) as client:
            while left > 0:
                left -= 1
                answer = await client.post(url + "/", content=body, headers=headers)
                if answer.status_code != 200 or "Failed" in answer.json():
                    failures.append(f"{answer.status_code} {answer.text[:300]}")

    async def main() -> None:
        await asyncio.gather(*(connection() for _ in range(SENDERS)))

    print("ready", flush=True)  # imported and built: the bench starts its clock on "go"
    sys.stdin.readline()
    asyncio.run(main())
    print(f"{len(failures)} failed: {failures[:3]}")
    sys.exit(1 if failures else 0)


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def redis_pid(state: str) -> int:
    """The Redis server's pid, as it tells it (`INFO server`): its CPU is in /proc."""
    import redis

    client = redis.Redis.from_url(state)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def start_nodes(apps: list[Path], state: str | None) -> list[tuple[subprocess.Popen[str], str]]:
    """Start a node for each app folder, all at once; each one's process and URL."""
    # The sandbox makes the code folder read-only: off, so the handler can count in a file.
    procs = []
    for app in apps:
        args = [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", "0", "--quiet"]
        args += ["--sandbox", "off"] + (["--state", state] if state is not None else [])
        log = app / "server.log"  # a file, not a pipe nobody drains once the node is up
        with log.open("w") as out:
            procs.append(subprocess.Popen(args, stderr=out, stdin=subprocess.DEVNULL, text=True))
    return [
        (proc, node_url(proc, app / "server.log")) for proc, app in zip(procs, apps, strict=True)
    ]


def node_url(proc: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if "serving on" in line:
                return line.rsplit(" ", 1)[-1].strip()
        time.sleep(0.05)
    raise RuntimeError(f"skylift up did not start: {log.read_text()}")


def fill(apps: list[Path], state: str | None, messages: int) -> None:
    """Queue `messages` before any node starts (the queue as the app declares it)."""
    import asyncio

    from skylift.queues.protocol import OutgoingMessage
    from skylift.queues.redis import RedisQueues
    from skylift.queues.sqlite import SqliteQueues

    async def main() -> None:
        if state is None:
            (apps[0] / ".skylift").mkdir()
        queues = RedisQueues(state) if state else SqliteQueues(apps[0] / ".skylift" / "queues.db")
        await queues.create_queue("work", {"VisibilityTimeout": "30"})
        for _ in range(messages // 10):
            await queues.send("work", [OutgoingMessage("x" * 100)] * 10)
        await queues.close()

    asyncio.run(main())


def node_cpu(pid: int) -> float:
    """CPU time of a node and its descendants (zygote, instances). Descendants only: the
    nodes stay in the bench's session (a session of their own would be its own
    autogroup for Linux's scheduler, and three nodes would get three shares of a loaded
    machine)."""
    return cpu_seconds(pid, session=False)


def stop_node(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(60)


def run(handler: Handler, nodes: int, state: str | None) -> Result:
    """Messages per second through `nodes` nodes (SQLite when `state` is None)."""
    with tempfile.TemporaryDirectory() as directory:
        apps = []
        for n in range(nodes):
            app = Path(directory) / f"node{n}"
            app.mkdir()
            done = str(app / "done.txt")
            source = APP.format(done=done, wait=handler.wait, concurrency=handler.concurrency)
            (app / "app.py").write_text(source)
            apps.append(app)
        expected = (handler.messages // nodes // 10 * 10) * nodes * 101  # whole batches
        if handler.backlog:
            fill(apps, state, expected // 101)
        servers = start_nodes(apps, state)
        senders: list[subprocess.Popen[str]] = []
        pid = redis_pid(state) if state else None

        def handled() -> int:  # bytes the handlers wrote so far: 101 per message
            return sum(done.stat().st_size for a in apps if (done := a / "done.txt").exists())

        try:
            if not handler.backlog:
                senders += [send(url, handler.messages // nodes) for _, url in servers]
                for sender in senders:
                    ready(sender)
            cpu = [node_cpu(server.pid) for server, _ in servers]
            redis_cpu = process_cpu(pid) if pid else 0.0
            started, before = time.perf_counter(), handled()
            for sender in senders:
                go(sender)
            deadline = time.monotonic() + 300
            while handled() < expected:
                if time.monotonic() > deadline:
                    logs = "".join((a / "server.log").read_text()[-2000:] for a in apps)
                    raise RuntimeError(f"the messages were not all handled in time:\n{logs}")
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            spent = zip(servers, cpu, strict=True)
            busy = [(node_cpu(s.pid) - c) / elapsed for (s, _), c in spent]
            redis_busy = (process_cpu(pid) - redis_cpu) / elapsed if pid else None
            for sender in senders:
                finish(sender)
            return Result((expected - before) / 101 / elapsed, busy, redis_busy)
        finally:
            for sender in senders:  # still sending after a failure: a node would wait for it
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
            for server, _ in servers:
                stop_node(server)


def flush(state: str) -> None:
    import redis

    client = redis.Redis.from_url(state)
    client.flushdb()
    client.close()


def measure(handlers: list[Handler], rounds: int, state: str) -> list[Measured]:
    """Every handler on SQLite and on 1, 2 and 3 Redis nodes, interleaved."""
    measured = [Measured(handler) for handler in handlers]
    for _ in range(rounds):
        for m in measured:
            for nodes, backend in ((1, None), (1, state), (2, state), (3, state)):
                name = f"{'Redis' if backend else 'SQLite'}, {nodes} node{'s' * (nodes > 1)}"
                if backend:
                    flush(backend)
                result = run(m.handler, nodes, backend)
                m.results.setdefault(name, []).append(result)
                redis = f", Redis {result.redis_cpu:.0%}" if result.redis_cpu is not None else ""
                cores = " ".join(f"{c:.2f}" for c in result.node_cpu)
                print(
                    f"{m.handler.name}: {name} {result.rate:,.0f} msg/s, node CPU {cores}" + redis,
                    flush=True,
                )
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="CPU-bound handler")
    parser.add_argument("--io-messages", type=int, default=3_000, help="waiting handler")
    # 2 batches at once per node, 0.2 s each: 100 messages/s per node, 300 for three, a
    # few hundredths of a core per node even on a machine loaded far past its cores (a
    # wake-up can then wait tens of milliseconds: small beside 0.2 s).
    parser.add_argument("--io-wait", type=float, default=0.2, help="seconds per batch")
    parser.add_argument("--io-concurrency", type=int, default=2, help="batches per node")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved; the best is shown")
    parser.add_argument("--redis", metavar="URL", help="a running Redis (default: its own)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--send", metavar="URL", help=argparse.SUPPRESS)  # a sender process
    args = parser.parse_args()
    if args.send:
        sender_main(args.send, args.messages)
        return
    # Stopped with SIGTERM: stop the nodes and Redis too (the `finally` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    handlers = [
        Handler("CPU-bound", args.messages),
        Handler("waiting", args.io_messages, args.io_wait, args.io_concurrency, backlog=True),
    ]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        redis_proc, state = (None, args.redis) if args.redis else start_redis(Path(folder))
        try:
            measured = measure(handlers, args.rounds, state)
        finally:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(10)
    load_after = os.getloadavg()
    command = (
        f"python bench/cluster_bench.py --messages {args.messages} --io-messages "
        f"{args.io_messages} --io-wait {args.io_wait} --io-concurrency {args.io_concurrency} "
        f"--rounds {args.rounds}"
    )
    text = section(measured, command, SENDERS, load_before[0], load_after[0], own=not args.redis)
    print(text)
    if args.out:
        write_section(args.out, "cluster-queues", text)


if __name__ == "__main__":
    main()
