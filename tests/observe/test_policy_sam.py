"""The alerting policy in a SAM template's Metadata: the same settings as skylift.toml,
read as written, a bad one named by its line, and paging under `skylift up --template`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from observe_support import eventually, skylift
from webhooks import webhook_server

from skylift.observe import policy_sam
from skylift.observe.policy import PolicyError
from skylift.testing import serve

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Metadata:
  skylift:
    alerts:
      interval: 0.2s
      window: 30s
      min_samples: 5
      for: 0
      cooldown: 1h
      metrics: [error_rate]
      primary:
        name: alice
        webhook: "{url}/alice"
      channels:
        - name: "#ops"
          slack: "{url}/ops"
      actions:
        - function: Pay
          scale: {{min: 1}}
Resources:
  Pay:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      CodeUri: src/
      Handler: pay.handler
"""
PAY = """\
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("card declined")
    return {"ok": True}
"""


def write(tmp_path: Path, url: str = "http://127.0.0.1:9") -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "pay.py").write_text(PAY)
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.format(url=url))
    return path


def test_the_template_policy_reads_as_skylift_toml_would(tmp_path: Path) -> None:
    policy = policy_sam.load(write(tmp_path))
    assert policy is not None
    assert (policy.interval, policy.window, policy.min_samples, policy.hold) == (0.2, 30, 5, 0)
    assert policy.metrics == ("error_rate",)
    assert policy.primary is not None and policy.primary.name == "alice"
    assert [c.name for c in policy.channels] == ["#ops"]
    (action,) = policy.actions
    assert (action.kind, action.function) == ("scale", "Pay")
    assert policy.source == tmp_path / "template.yaml"


def test_a_template_without_the_metadata_has_no_policy(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text().replace("  skylift:", "  other:"))
    assert policy_sam.load(path) is None


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("min_samples: 5", "min_samples: five"), 8, "alerts: min_samples must be a whole"),
        (('webhook: "http', 'webhook: "ftp'), 14, "alerts.primary: webhook must be an http"),
        (("scale: {min: 1}", "rollback: yes please"), 20, "alerts.actions: rollback must be"),
        (("      for: 0\n", "      for: 0\n      pages: 3\n"), 10, "unknown setting 'pages'"),
        (("  skylift:\n    alerts:", "  skylift: [alerts]\n  other:\n    x:"), 4, "skylift must"),
    ],
)
def test_a_bad_template_policy_names_the_template_and_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text().replace(change[0], change[1], 1))
    with pytest.raises(PolicyError) as caught:
        policy_sam.load(path)
    assert caught.value.path == path
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)


def test_a_policy_in_both_places_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    (tmp_path / "skylift.toml").write_text("[alerts]\n")
    done = skylift("up", "--template", str(path), "--port", "0", timeout=60)
    assert done.returncode == 2
    assert "both in" in done.stderr and "keep one" in done.stderr


def test_a_bad_template_policy_stops_skylift_up(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text().replace("window: 30s", "window: soon"))
    done = skylift("up", "--template", str(path), "--port", "0", timeout=60)
    assert done.returncode == 2
    assert f"{path} line 7: Metadata.skylift.alerts: window must be a duration" in done.stderr


def test_skylift_up_pages_by_the_template_policy(tmp_path: Path) -> None:
    with webhook_server() as hooks:
        path = write(tmp_path, hooks.url)
        with serve(template=str(path), options=["--quiet"]) as url:
            invoke = f"{url}/2015-03-31/functions/Pay/invocations"
            failing = threading.Event()
            stop = threading.Event()

            def traffic() -> None:
                with httpx.Client(timeout=30) as client:
                    while not stop.is_set():
                        client.post(invoke, json={"fail": failing.is_set()})
                        time.sleep(0.01)

            thread = threading.Thread(target=traffic)
            thread.start()
            try:

                def ready() -> bool:
                    found = httpx.get(f"{url}/_skylift/alerts", timeout=30).json()["series"]
                    return any(s["subject"] == "Pay" and s["samples"] >= 5 for s in found)

                eventually(ready, 60)
                failing.set()
                page = eventually(lambda: hooks.to("/alice"), 30)[0]
            finally:
                stop.set()
                thread.join()
            assert (page["alert"]["subject"], page["alert"]["metric"]) == ("Pay", "error_rate")
            assert eventually(lambda: hooks.to("/ops"), 10)
            status = httpx.get(f"{url}/_skylift/status", timeout=30).json()
            assert status["functions"]["Pay"]["min"] == 1  # the template's scale action
            listed = skylift("alerts", "--template", str(path))
            assert listed.returncode == 0 and "function Pay" in listed.stdout
