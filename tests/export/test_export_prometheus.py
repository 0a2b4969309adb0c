"""`skylift export prometheus`: real `promtool check rules` accepts the rules, and
`promtool test rules` proves they fire at 3 sigma, stay quiet at 2, and escalate.

promtool comes with the Debian package `prometheus`: without it these tests skip; under
CI=true they fail (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
APP = """\
from skylift import App

app = App("payments")


@app.function()
def pay(event, context):
    return {"ok": True}
"""
POLICY = """\
[alerts]
interval = "1m"
window = "1h"
min_samples = 10
for = 0
escalate_after = "5m"

[alerts.primary]
name = "alice"
webhook = "https://pager.example/alice"

[alerts.backup]
name = "bob"
webhook = "https://pager.example/bob"

[[alerts.channels]]
name = "#payments"
slack = "https://hooks.slack.example/payments"
"""
# A queue's oldest message alternates 10 s and 12 s for half an hour: mean 11, sd 1.
BASELINE = " ".join("10" if i % 2 == 0 else "12" for i in range(30))


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = tmp_path_factory.mktemp("payments")
    (app / "app.py").write_text(APP)
    (app / "skylift.toml").write_text(POLICY)
    out = app / "prom"
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "export", "prometheus", str(app), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'rules.yml'}" in done.stderr
    return out


def run_tests(tmp: Path, exported: Path, tests: list[dict[str, object]]) -> str:
    spec = tmp / "tests.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(exported / "rules.yml")],
                "evaluation_interval": "1m",
                "tests": tests,
            }
        )
    )
    done = subprocess.run(
        [promtool(), "test", "rules", str(spec)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_rules(exported: Path) -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(exported / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 36 rules found" in done.stdout


def queue_alerts(name: str, at: str, value: float | None) -> dict[str, object]:
    labels = {
        "queue": "jobs",
        "metric": "queue_age",
        "severity": "page" if "Page" in name else "notify",
    }
    if "Escalated" in name:
        labels["escalation"] = "backup"
    expected = []
    if value is not None:
        expected = [
            {
                "exp_labels": labels,
                "exp_annotations": {
                    "summary": f"queue jobs queue_age is {value:.1f} standard deviations above "
                    "its mean over 1h"
                },
            }
        ]
    return {"eval_time": at, "alertname": name, "exp_alerts": expected}


def test_three_sigma_pages_and_two_sigma_only_notifies(exported: Path, tmp_path: Path) -> None:
    age = 'skylift_queue_oldest_message_age_seconds{queue="jobs"}'
    run_tests(
        tmp_path,
        exported,
        [
            {  # 2.5 sigma (13.5 s against 11 ± 1) for 20 minutes: a notice, never a page
                "interval": "1m",
                "input_series": [{"series": age, "values": f"{BASELINE} 13.5x20"}],
                "alert_rule_test": [
                    queue_alerts("SkyliftQueueAgeNotice", "29m", None),
                    queue_alerts("SkyliftQueueAgeNotice", "30m", 2.5),
                    queue_alerts(
                        "SkyliftQueueAgeNotice", "50m", 2.5
                    ),  # the outage is not the baseline
                    queue_alerts("SkyliftQueueAgePage", "30m", None),
                    queue_alerts("SkyliftQueueAgePage", "50m", None),
                    queue_alerts("SkyliftQueueAgePageEscalated", "50m", None),
                ],
            },
            {  # 4 sigma: the primary is paged at once, the backup 5 minutes later
                "interval": "1m",
                "input_series": [{"series": age, "values": f"{BASELINE} 15x20"}],
                "alert_rule_test": [
                    queue_alerts("SkyliftQueueAgePage", "29m", None),
                    queue_alerts("SkyliftQueueAgePage", "30m", 4.0),
                    queue_alerts("SkyliftQueueAgePageEscalated", "34m", None),
                    queue_alerts("SkyliftQueueAgePageEscalated", "35m", 4.0),
                ],
            },
            {  # too few samples to judge (min_samples 10): nothing, however high
                "interval": "1m",
                "input_series": [{"series": age, "values": "10 12 10 12 10 12 10 12 100"}],
                "alert_rule_test": [queue_alerts("SkyliftQueueAgePage", "8m", None)],
            },
        ],
    )


def function_test(errors_per_minute: float) -> dict[str, object]:
    """100 successes a minute, no errors for 30 minutes, then some."""
    total = 'skylift_invocations_total{function="pay",outcome="%s"}'
    after = f"{5 + errors_per_minute}+{errors_per_minute}x30"
    return {
        "interval": "1m",
        "input_series": [
            {"series": total % "success", "values": "100+100x60"},
            {"series": total % "error", "values": f"5x30 {after}"},
            {"series": total % "throttle", "values": "0x60"},
        ],
    }


def test_error_rate_pages_at_three_sigma_not_at_two(exported: Path, tmp_path: Path) -> None:
    # No errors at all makes the standard deviation 0: the floor (0.01) stands in for it.
    page = {"function": "pay", "metric": "error_rate", "severity": "page"}
    summary = "function pay error_rate is {} standard deviations above its mean over 1h"
    # 5 errors in 105: 0.048, 4.8 floors above 0; the ramp into it (rates over 4 minutes)
    # joined the baseline while under 2 sigma, so 4.7.
    high = function_test(5)
    high["alert_rule_test"] = [
        {"eval_time": "30m", "alertname": "SkyliftErrorRatePage", "exp_alerts": []},
        {
            "eval_time": "40m",
            "alertname": "SkyliftErrorRatePage",
            "exp_alerts": [
                {"exp_labels": page, "exp_annotations": {"summary": summary.format("4.7")}}
            ],
        },
    ]
    low = function_test(2.5)  # 2.5 errors in 102.5: 0.024, 2.4 floors: quiet
    low["alert_rule_test"] = [
        {"eval_time": t, "alertname": "SkyliftErrorRatePage", "exp_alerts": []}
        for t in ("32m", "35m", "45m", "60m")
    ]
    run_tests(tmp_path, exported, [high, low])


def test_alertmanager_routes_pages_to_primary_then_backup(exported: Path) -> None:
    config = yaml.safe_load((exported / "alertmanager.yml").read_text())
    routes = config["route"]["routes"]
    by_receiver = {route["receiver"]: route for route in routes}
    assert by_receiver["primary"]["matchers"] == ['severity="page"', 'escalation=""']
    assert by_receiver["backup"]["matchers"] == ['severity="page"', 'escalation="backup"']
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["primary"]["webhook_configs"][0]["url"] == "https://pager.example/alice"
    assert receivers["backup"]["webhook_configs"][0]["url"] == "https://pager.example/bob"
    slack = receivers["channels"]["slack_configs"][0]
    assert (slack["api_url"], slack["channel"]) == (
        "https://hooks.slack.example/payments",
        "#payments",
    )
    assert config["inhibit_rules"][0]["source_matchers"] == ['severity="page"']
    rules = yaml.safe_load((exported / "rules.yml").read_text())
    escalated = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "SkyliftErrorRatePageEscalated"
    ]
    assert escalated[0]["for"] == "5m"


def test_a_bad_policy_fails_the_export_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "skylift.toml").write_text(POLICY.replace('window = "1h"', 'window = "an hour"'))
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "export", "prometheus", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "skylift.toml line 3: [alerts] window must be a duration" in done.stderr
    assert not (tmp_path / "prometheus").exists()
