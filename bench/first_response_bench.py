"""The first response after a server's port opens: skylift up against FastAPI on uvicorn.

    python bench/first_response_bench.py --rounds 7

The client tries to connect every 0.2 ms from the moment the server starts; the clock
starts when a connection is accepted (the port is open) and stops when the whole answer
to POST /change is read. Plain sockets: nothing on the client side loads lazily.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_common import BODY, EXPECTED, free_port, stop

REQUEST = (
    "POST /change HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(BODY)}\r\n\r\n{BODY}"
).encode()


def _launch(name: str, port: int) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[1]
    if name == "skylift":
        cmd = [sys.executable, "-m", "skylift.cli", "up", str(root / "examples" / "make-change")]
        cmd += ["--port", str(port)]
    else:
        cmd = [sys.executable, str(root / "bench" / "peers.py"), name, str(port)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return body


def first_response(name: str) -> float:
    """Milliseconds from the port accepting a connection to the first answer's end."""
    port = free_port()
    proc = _launch(name, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            sock = socket.socket()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.connect(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                sock.close()
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{name} did not open port {port}") from None
                time.sleep(0.0002)
        started = time.perf_counter()
        with sock:
            sock.sendall(REQUEST)
            body = _read_response(sock)
        elapsed = (time.perf_counter() - started) * 1000
        assert body.decode() == EXPECTED, f"{name} answered {body!r}"
        return elapsed
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--servers", default="skylift,fastapi")
    args = parser.parse_args()
    names = args.servers.split(",")
    runs: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            runs[name].append(first_response(name))
    for name in names:
        shown = ", ".join(f"{ms:.1f}" for ms in sorted(runs[name]))
        print(f"{name}: median {statistics.median(runs[name]):.2f} ms  [{shown}]")


if __name__ == "__main__":
    main()
