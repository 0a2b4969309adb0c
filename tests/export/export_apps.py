"""Apps the export tests read: every example, and apps using every trigger and setting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())

SHOP = """
from skylift import App

app = App("shop")
app.declare_queue("orders", visibility_timeout=60, dead_letter_queue="orders-dlq",
                  max_receive_count=3)
app.declare_queue("audit.fifo", content_based_deduplication=True, retention_seconds=86400)
app.declare_bucket("shop-uploads")

@app.http("/items/{id}", methods=["GET", "DELETE"], memory=256, environment={"TABLE": "items"})
def item(event, context):
    return {"statusCode": 200, "body": "item"}

@app.http("/legacy/{proxy+}", methods=["ANY"], payload="1.0")
def legacy(event, context):
    return {"statusCode": 200, "body": "legacy"}

@app.queue("orders", batch_size=5, report_batch_item_failures=True, max_concurrency=4)
@app.function(max_concurrency=10, min_instances=1, timeout=30, memory=512)
def take_order(event, context):
    return {"batchItemFailures": []}

@app.schedule("rate(5 minutes)", input={"job": "nightly"})
@app.schedule("cron(0 12 * * ? *)", enabled=False)
def tick(event, context):
    return None

@app.upload("shop-uploads", prefix="in/", suffix=".jpg", events=["s3:ObjectCreated:Put"])
def ingest(event, context):
    return None

@app.function(retries=1, max_event_age=3600, on_failure="queue:failed-work",
              on_success="function:tick", dead_letter_queue="work-dlq",
              log_format="JSON", log_level="INFO")
def work(event, context):
    return None
"""

# An HTTP-only app: a Deployment with an HPA, no state.
API = """
from skylift import App

app = App("api")

@app.http("/hello", methods=["GET"], memory=1024, min_instances=2)
def hello(event, context):
    return {"statusCode": 200, "body": "hi"}

@app.http("$default", methods=["ANY"])
def fallback(event, context):
    return {"statusCode": 404, "body": "none"}
"""


def write_app(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(source))
    return directory


def tool(name: str) -> str:
    """A validator installed with the test extras, beside this interpreter."""
    return str(Path(sys.executable).parent / name)


def skylift(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def all_apps(tmp_path: Path) -> list[Path]:
    """Every example, plus the apps above written under `tmp_path`."""
    return [*EXAMPLES, write_app(tmp_path / "shop", SHOP), write_app(tmp_path / "api", API)]
