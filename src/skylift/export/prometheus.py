"""`skylift export prometheus`: the app's alerting policy as Prometheus rules and an
Alertmanager configuration, for running the same alerting where Prometheus already runs.

`rules.yml` holds one group per metric, evaluated every policy `interval`, in an order
that reproduces skylift's own detector (`observe/alerts_detector.py`):

1. `skylift:M:mean`, `:stddev`, `:samples`: over the window of *earlier* normal samples
   (evaluated before this round's sample is recorded, so a sample never judges itself);
2. `skylift:M`: this round's sample, from skylift's `/metrics`;
3. `skylift:M:sigma`: how many standard deviations (at least the floor) it is above the
   mean, once the window holds `min_samples`;
4. `skylift:M:normal`: the sample, unless it is beyond `notify_at`: an outage does not
   become the baseline it is judged by.

Alerts: `SkyliftMNotice` (beyond 2 sigma, `severity: notify`), `SkyliftMPage` (3 sigma,
`severity: page`), and `SkyliftMPageEscalated` (3 sigma held `escalate_after` longer,
`escalation: backup`). Alertmanager routes pages to the primary, the escalation to the
backup, everything to the channels, and a page inhibits the notice of the same series.
Acknowledging is a silence (`amtool silence add`): it silences the escalation too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from skylift.export.model import AppModel
from skylift.export.plan import ExportError, File, Plan
from skylift.observe import policy as policies
from skylift.observe import policy_sam
from skylift.observe.policy import Contact, Policy, PolicyError

RULES = "rules.yml"
ALERTMANAGER = "alertmanager.yml"
# A rate needs several scrapes in its range; the detector's one-interval delta does not.
RATE_INTERVALS = 4
_NAMES = {
    "duration_p99": "DurationP99",
    "error_rate": "ErrorRate",
    "throttles": "Throttles",
    "queue_age": "QueueAge",
}
_SUBJECT = {
    "duration_p99": "function",
    "error_rate": "function",
    "throttles": "function",
    "queue_age": "queue",
}


def duration(seconds: float) -> str:
    """A Prometheus duration: whole milliseconds, in the largest exact unit."""
    ms = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def sample_expression(metric: str, rate: str) -> str:
    """One round's value, as `observe/alerts_service.Sampler` computes it."""
    ran = f'sum by (function) (rate(skylift_invocations_total{{outcome!="throttle"}}[{rate}]))'
    if metric == "error_rate":
        failed = f'sum by (function) (rate(skylift_invocations_total{{outcome=~"error|timeout"}}[{rate}]))'  # noqa: E501
        return f"{failed} / ({ran} > 0)"  # no sample without invocations (not NaN)
    if metric == "duration_p99":
        buckets = (
            f"sum by (function, le) (rate(skylift_invocation_duration_seconds_bucket[{rate}]))"
        )
        return f"histogram_quantile(0.99, {buckets}) and ({ran} > 0)"
    if metric == "throttles":
        return f"sum by (function) (rate(skylift_throttles_total[{rate}]))"
    return "max by (queue) (skylift_queue_oldest_message_age_seconds)"


def rule_groups(policy: Policy) -> dict[str, Any]:
    window, rate = duration(policy.window), duration(policy.interval * RATE_INTERVALS)
    groups = []
    for metric in policy.metrics:
        series, name, subject = f"skylift:{metric}", _NAMES[metric], _SUBJECT[metric]
        floor = policy.floors[metric]
        sigma = (
            f"({series} - {series}:mean) / clamp_min({series}:stddev, {floor!r})"
            f" and {series}:samples >= {policy.min_samples}"
        )
        rules: list[dict[str, Any]] = [
            {"record": f"{series}:mean", "expr": f"avg_over_time({series}:normal[{window}])"},
            {"record": f"{series}:stddev", "expr": f"stddev_over_time({series}:normal[{window}])"},
            {"record": f"{series}:samples", "expr": f"count_over_time({series}:normal[{window}])"},
            {"record": series, "expr": sample_expression(metric, rate)},
            {"record": f"{series}:sigma", "expr": sigma},
            {
                "record": f"{series}:normal",
                "expr": f"{series} unless {series}:sigma >= {policy.notify_at!r}",
            },
        ]
        alerts = (
            (f"Skylift{name}Notice", policy.notify_at, policy.hold, {"severity": "notify"}),
            (f"Skylift{name}Page", policy.page_at, policy.hold, {"severity": "page"}),
            (
                f"Skylift{name}PageEscalated",
                policy.page_at,
                policy.hold + policy.escalate_after,
                {"severity": "page", "escalation": "backup"},
            ),
        )
        for alert, threshold, hold, labels in alerts:
            rules.append(
                {
                    "alert": alert,
                    "expr": f"{series}:sigma >= {threshold!r}",
                    "for": duration(hold),
                    "labels": {**labels, "metric": metric},
                    "annotations": {
                        "summary": (
                            f"{subject} {{{{ $labels.{subject} }}}} {metric} is "
                            f'{{{{ $value | printf "%.1f" }}}} standard deviations above '
                            f"its mean over {window}"
                        ),
                    },
                }
            )
        groups.append(
            {"name": f"skylift-{metric}", "interval": duration(policy.interval), "rules": rules}
        )
    return {"groups": groups}


def _receiver(name: str, contacts: list[Contact]) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": name}
    webhooks = [{"url": c.webhook, "send_resolved": True} for c in contacts if c.webhook]
    slack = [
        {
            "api_url": c.slack,
            "send_resolved": True,
            "title": "{{ .CommonLabels.severity | toUpper }}: {{ .CommonLabels.alertname }}",
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
            **({"channel": c.name} if c.name.startswith("#") else {}),
        }
        for c in contacts
        if c.slack
    ]
    if webhooks:
        receiver["webhook_configs"] = webhooks
    if slack:
        receiver["slack_configs"] = slack
    return receiver


def alertmanager_config(policy: Policy) -> dict[str, Any]:
    """Pages to the primary, escalations to the backup, all of it to the channels."""
    primary = [policy.primary] if policy.primary else []
    backup = [policy.backup] if policy.backup else []
    channels = list(policy.channels)
    routes = [
        {
            "matchers": ['severity="page"', 'escalation="backup"'],
            "receiver": "backup",
            "continue": True,
        },
        {"matchers": ['severity="page"', 'escalation=""'], "receiver": "primary", "continue": True},
        {"matchers": ['severity=~"page|notify"', 'escalation=""'], "receiver": "channels"},
    ]
    return {
        "route": {
            "receiver": "channels",
            "group_by": ["alertname", "function", "queue"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [
            {
                # A page says all a notice would, to the same people and more.
                "source_matchers": ['severity="page"'],
                "target_matchers": ['severity="notify"'],
                "equal": ["metric", "function", "queue"],
            }
        ],
        "receivers": [
            _receiver("primary", primary),
            _receiver("backup", backup),
            _receiver("channels", channels),
        ],
    }


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


class PrometheusExporter:
    """Plans `rules.yml` and `alertmanager.yml` from the app's `skylift.toml` policy."""

    def plan(self, app: AppModel) -> Plan:
        return self.plan_policy(_app_policy(app), app.name)

    def plan_policy(self, policy: Policy | None, name: str = "app") -> Plan:
        notes: list[str] = []
        if policy is None:
            notes.append(
                f"no [alerts] in {policies.FILE}: the default thresholds, and no one to page "
                "(add [alerts.primary], [alerts.backup] and [[alerts.channels]])"
            )
            policy = Policy()
        elif policy.primary is None:
            notes.append("the policy names no primary: pages go to the channels only")
        header = (
            f"# Generated by `skylift export prometheus` from {name}'s {policies.FILE}.\n"
            "# Load with rule_files: in prometheus.yml; scrape skylift every interval or "
            "more often.\n"
        )
        return Plan(
            files=(
                File(RULES, header + _yaml(rule_groups(policy)), "rules", "recording+alerting"),
                File(
                    ALERTMANAGER,
                    header + _yaml(alertmanager_config(policy)),
                    "config",
                    "alertmanager",
                ),
            ),
            notes=tuple(notes),
        )


def app_policy(app: AppModel) -> Policy:
    """The app's alerting policy: its `skylift.toml`'s or its template's, or the default."""
    return _app_policy(app) or Policy()


def _app_policy(app: AppModel) -> Policy | None:
    template = app.code_dir / app.target
    is_template = app.target.endswith((".yaml", ".yml", ".json")) and template.is_file()
    return _policy(app.code_dir, template if is_template else None)


def _policy(code_dir: Path, template: Path | None) -> Policy | None:
    try:
        return policy_sam.for_app(code_dir, template)
    except PolicyError as exc:
        raise ExportError(str(exc)) from None
