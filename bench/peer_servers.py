"""How each server of `bench/http_bench.py` is installed and started.

`prepare(name, folder)` installs what the peer needs (Python packages come with the
`bench` extra; serverless into bench/.node with npm; the SAM CLI into bench/.sam-venv,
since it pins its own boto3 and Flask) and returns the command that serves POST /change,
or raises `NotRunnable` with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import peers

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
NODE_DIR = BENCH / ".node"
NODE_PACKAGES = ["serverless@3", "serverless-offline@13"]
SAM_VENV = BENCH / ".sam-venv"

# Every peer in the order of the table; the ceiling last.
NAMES = [
    "skylift",
    "fastapi",
    "flask-gunicorn",
    "flask-dev",
    "chalice",
    "serverless",
    "sam",
    "asgi",
]
LABELS = {
    "skylift": "skylift (`skylift up`, a forked worker per instance)",
    "fastapi": "FastAPI on uvicorn, 1 worker",
    "flask-gunicorn": "Flask on gunicorn, 2 sync workers",
    "flask-dev": "Flask dev server (threaded)",
    "chalice": "AWS Chalice, `chalice local`",
    "serverless": "serverless-offline 13 on serverless 3 (python3 runtime)",
    "sam": "AWS SAM CLI, `sam local start-api`",
    "asgi": "raw ASGI app on uvicorn, handler in-process (the ceiling)",
}


class NotRunnable(Exception):
    """Raised when a peer cannot be installed or started here; the message says why."""


@dataclass
class Server:
    name: str
    command: list[str]
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    ports: int = 1  # how many free ports the command takes ({port0}, {port1}, ...)
    versions: str = ""
    start_timeout: float = 60.0


def _version(*packages: str) -> str:
    found = []
    for package in packages:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            raise NotRunnable(f"{package} is not installed: run `make bench`") from None
    return ", ".join(found)


def _run(command: list[str], what: str, timeout: float = 900, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotRunnable(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise NotRunnable(f"{what} failed (exit {done.returncode}): {' / '.join(tail)}")
    return done.stdout


def _skylift(folder: Path) -> Server:
    # A copy of the example, so its state (.skylift/, whose lock allows one server per
    # app) is the bench's own: a `skylift up` of the example elsewhere does not collide.
    app = folder / "make-change-skylift"
    app.mkdir(exist_ok=True)
    shutil.copy(peers.EXAMPLE, app / "app.py")
    return Server(
        "skylift",
        [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", "{port0}"],
        versions=_version("skylift", "uvicorn", "httptools", "uvloop"),
    )


def _fastapi(folder: Path) -> Server:
    return Server(
        "fastapi",
        [sys.executable, str(BENCH / "peers.py"), "fastapi", "{port0}"],
        versions=_version("fastapi", "uvicorn"),
    )


def _asgi(folder: Path) -> Server:
    return Server(
        "asgi",
        [sys.executable, str(BENCH / "peers.py"), "asgi", "{port0}"],
        versions=_version("uvicorn", "httptools", "uvloop"),
    )


def _flask_dev(folder: Path) -> Server:
    return Server(
        "flask-dev",
        [sys.executable, str(BENCH / "peers.py"), "flask", "{port0}"],
        versions=_version("flask", "werkzeug"),
    )


def _flask_gunicorn(folder: Path) -> Server:
    versions = _version("flask", "gunicorn")
    return Server(
        "flask-gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "--workers=2",
            "--worker-class=sync",
            "--bind=127.0.0.1:{port0}",
            "--log-level=warning",
            f"--chdir={BENCH}",
            "peers:flask_app()",
        ],
        versions=versions,
    )


def _chalice(folder: Path) -> Server:
    versions = _version("chalice")
    project = peers.write_chalice_project(folder)
    return Server(
        "chalice",
        [str(VENV_BIN / "chalice"), "local", "--host", "127.0.0.1", "--port", "{port0}"],
        cwd=project,
        versions=versions,
    )


def _node_versions() -> str:
    found = []
    for package in ("serverless", "serverless-offline"):
        manifest = NODE_DIR / "node_modules" / package / "package.json"
        found.append(f"{package} {json.loads(manifest.read_text())['version']}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return ", ".join([*found, f"node {node}"])


def _serverless(folder: Path) -> Server:
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise NotRunnable("npm and node are not installed (apt-get install npm)")
    cli = NODE_DIR / "node_modules" / "serverless" / "bin" / "serverless.js"
    if not (NODE_DIR / "node_modules" / "serverless-offline").is_dir() or not cli.exists():
        NODE_DIR.mkdir(exist_ok=True)
        (NODE_DIR / "package.json").write_text('{"private": true}\n')
        install = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
        _run([*install, *NODE_PACKAGES], "npm install " + " ".join(NODE_PACKAGES), cwd=NODE_DIR)
    project = peers.write_serverless_project(folder)
    (project / "node_modules").unlink(missing_ok=True)
    (project / "node_modules").symlink_to(NODE_DIR / "node_modules")
    return Server(
        "serverless",
        [
            "node",
            str(cli),
            "offline",
            "start",
            "--host=127.0.0.1",
            "--httpPort={port0}",
            "--lambdaPort={port1}",
            "--websocketPort={port2}",
            "--albPort={port3}",
            "--noPrependStageInUrl",
        ],
        cwd=project,
        ports=4,
        env={
            # No telemetry, update checks or dashboard prompts: the registry is the only
            # network here. VIRTUAL_ENV puts this venv's python3 first for the runner.
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_TRACKING_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "SLS_DEPRECATION_DISABLE": "*",
            "SLS_INTERACTIVE_SETUP_DISABLE": "1",
            "VIRTUAL_ENV": str(VENV_BIN.parent),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        },
        versions=_node_versions(),
    )


def _sam(folder: Path) -> Server:
    sam = SAM_VENV / "bin" / "sam"
    if not sam.exists():
        _run([sys.executable, "-m", "venv", str(SAM_VENV)], "python -m venv bench/.sam-venv")
        pip = [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, "--disable-pip-version-check", "aws-sam-cli"], "pip install aws-sam-cli")
    version = _run([str(sam), "--version"], "sam --version").strip()
    project = peers.write_sam_project(folder)
    return Server(
        "sam",
        [str(sam), "local", "start-api", "--host", "127.0.0.1", "--port", "{port0}"],
        cwd=project,
        env={
            "SAM_CLI_TELEMETRY": "0",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        },
        versions=version,
        start_timeout=120.0,
    )


PREPARE: dict[str, Callable[[Path], Server]] = {
    "skylift": _skylift,
    "fastapi": _fastapi,
    "flask-gunicorn": _flask_gunicorn,
    "flask-dev": _flask_dev,
    "chalice": _chalice,
    "serverless": _serverless,
    "sam": _sam,
    "asgi": _asgi,
}


def prepare(name: str, folder: Path) -> Server:
    """Install what `name` needs and return how to start it, or raise NotRunnable."""
    return PREPARE[name](folder)


def environment(server: Server) -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **server.env}
