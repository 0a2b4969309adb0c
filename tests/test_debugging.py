"""Debugging a function: pdb in the terminal (`--debug`), an editor through debugpy
(`--debug-port`), with the timeout suspended."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

APP = """
from skylift import App

app = App()


@app.function(timeout=1)
def double(event, context):
    x = event["n"] * 2
    breakpoint()
    return {"x": x, "suspended": context.get_remaining_time_in_millis() > 60_000}


@app.function(timeout=1)
def traced(event, context):
    y = event["n"] + 1
    return {"y": y}  # the editor's breakpoint
"""


SKYLIFT = [sys.executable, "-m", "skylift.cli"]


def write_app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "event.json").write_text('{"n": 21}')
    return tmp_path


class Terminal:
    """A pseudo-terminal, as a person's shell gives `skylift invoke`."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd)
        os.close(slave)
        self.seen = b""

    def expect(self, token: bytes, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while token not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{token!r} never came; the terminal shows:\n{self.seen.decode()}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the other side closed
                    assert token in self.seen, self.seen.decode()

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def test_breakpoint_gives_pdb_in_the_terminal_with_the_timeout_suspended(tmp_path: Path) -> None:
    app = write_app(tmp_path)
    args = [sys.executable, "-m", "skylift.cli", "invoke", "double", ".", "--debug"]
    terminal = Terminal([*args, "-e", "event.json"], app)
    try:
        terminal.expect(b"timeout is suspended")
        terminal.expect(b"(Pdb)")
        time.sleep(1.5)  # past the function's 1 s timeout: a debugger holds it
        terminal.type("p x")
        terminal.expect(b"42")
        terminal.type("c")
        terminal.expect(b'{"x": 42, "suspended": true}')
        assert terminal.proc.wait(30) == 0
    finally:
        terminal.close()
    assert b"Task timed out" not in terminal.seen


class Dap:
    """Just enough of the Debug Adapter Protocol to attach, break, look and go on."""

    def __init__(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except OSError:
                assert time.monotonic() < deadline, "debugpy never listened"
                time.sleep(0.1)
        self.seq = 0
        self.buffer = b""
        self.pending: list[dict[str, Any]] = []

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps(
            {"seq": self.seq, "type": "request", "command": command, "arguments": arguments}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(head.split(b":")[1])
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        message: dict[str, Any] = json.loads(body)
        return message

    def wait(self, kind: str, name: str) -> dict[str, Any]:
        """The next response to `name` (a command) or event `name`."""
        for index, message in enumerate(self.pending):
            if message["type"] == kind and message.get("command", message.get("event")) == name:
                return self.pending.pop(index)
        while True:
            message = self._read()
            if message["type"] == kind and message.get("command", message.get("event")) == name:
                return message
            self.pending.append(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_an_editor_attaches_with_debugpy_and_stops_at_its_breakpoint(tmp_path: Path) -> None:
    pytest.importorskip("debugpy")
    app = write_app(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [*SKYLIFT, "invoke", "traced", ".", "--debug-port", str(port), "-e", "event.json"],
        cwd=app,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dap: Dap | None = None
    try:
        dap = Dap(port)
        dap.send("initialize", adapterID="python", clientID="skylift-test")
        assert dap.wait("response", "initialize")["success"]
        dap.send("attach", justMyCode=False)
        dap.wait("event", "initialized")
        source = str(app / "app.py")
        line = 1 + APP.splitlines().index('    return {"y": y}  # the editor\'s breakpoint')
        dap.send("setBreakpoints", source={"path": source}, breakpoints=[{"line": line}])
        assert dap.wait("response", "setBreakpoints")["body"]["breakpoints"][0]["verified"]
        dap.send("configurationDone")
        dap.wait("response", "configurationDone")
        stopped = dap.wait("event", "stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        time.sleep(1.5)  # past the function's 1 s timeout, stopped in the editor
        dap.send("stackTrace", threadId=stopped["body"]["threadId"])
        frame = dap.wait("response", "stackTrace")["body"]["stackFrames"][0]
        assert frame["name"] == "traced" and frame["line"] == line
        dap.send("evaluate", expression="y", frameId=frame["id"], context="repl")
        assert dap.wait("response", "evaluate")["body"]["result"] == "22"
        dap.send("continue", threadId=stopped["body"]["threadId"])
        out, err = proc.communicate(timeout=60)
    finally:
        if dap is not None:
            dap.sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out) == {"y": 22}
    assert f"waits for a debugger on 127.0.0.1:{port}" in err
    assert "Task timed out" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invoke", "double", ".", "--debug", "--url", "http://127.0.0.1:1"], "leave out --url"),
        (["invoke", ".", "--debug"], "name the function to debug"),
        (["invoke", "nope", ".", "--debug"], "cannot debug nope: the app declares double"),
        (["invoke", "double", ".", "--debug-port", "70000"], "is not a TCP port"),
        (["up", ".", "--debug-port", "5678"], "--debug-port goes with --debug FUNCTION"),
    ],
)
def test_debug_options_refuse_what_cannot_work(
    tmp_path: Path, args: list[str], message: str
) -> None:
    app = write_app(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr
