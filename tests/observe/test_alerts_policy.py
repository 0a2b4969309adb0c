"""skylift.toml's [alerts]: read as written; a bad file fails naming the line at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from skylift.observe.policy import PolicyError, load

GOOD = """\
# the payments team's policy
[alerts]
interval = "10s"
window = "30m"
min_samples = 30
for = "1m"
cooldown = "20m"
escalate_after = "5m"
metrics = ["error_rate", "duration_p99"]

[alerts.floors]
error_rate = 0.02

[alerts.primary]
name = "alice"
webhook = "https://pager.example/alice"

[alerts.backup]
name = "bob"
slack = "https://hooks.slack.example/bob"

[[alerts.channels]]
name = "#payments"
slack = "https://hooks.slack.example/payments"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "skylift.toml"
    path.write_text(text)
    return path


def test_a_policy_reads_as_written(tmp_path: Path) -> None:
    policy = load(write(tmp_path, GOOD))
    assert policy is not None
    assert (policy.interval, policy.window, policy.min_samples) == (10.0, 1800.0, 30)
    assert (policy.hold, policy.cooldown, policy.escalate_after) == (60.0, 1200.0, 300.0)
    assert (policy.page_at, policy.notify_at) == (3.0, 2.0)
    assert policy.window_samples == 180
    assert policy.metrics == ("error_rate", "duration_p99")
    assert policy.floors["error_rate"] == 0.02 and policy.floors["queue_age"] == 1.0
    assert policy.primary is not None and policy.primary.name == "alice"
    assert policy.primary.webhook == "https://pager.example/alice"
    assert policy.backup is not None and policy.backup.slack == "https://hooks.slack.example/bob"
    assert [c.name for c in policy.channels] == ["#payments"]


def test_a_file_without_alerts_has_no_policy(tmp_path: Path) -> None:
    assert load(write(tmp_path, "[other]\nx = 1\n")) is None


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (
            ('escalate_after = "5m"', 'escalate_after = "5 minutes"'),
            8,
            "escalate_after must be a duration",
        ),
        (('for = "1m"', 'fore = "1m"'), 6, "unknown setting 'fore'"),
        (("min_samples = 30", "min_samples = 1"), 5, "min_samples must be a whole number from 2"),
        (
            ('metrics = ["error_rate", "duration_p99"]', 'metrics = ["latency"]'),
            9,
            "metrics must list",
        ),
        (("error_rate = 0.02", "errors = 0.02"), 12, "'errors' is not a metric"),
        (
            ('webhook = "https://pager.example/alice"', 'webhook = "pager.example"'),
            16,
            "webhook must be an http(s) URL",
        ),
        (('name = "bob"\n', 'nom = "bob"\n'), 19, "unknown key 'nom'"),
        (('name = "#payments"', 'name = ""'), 23, "channels needs a name"),
        (('window = "30m"', 'window = "10s"'), 4, "window (10s) must hold at least two intervals"),
        (('cooldown = "20m"', 'cooldown = "20m\n'), 7, "line 7"),  # a TOML syntax error
    ],
)
def test_a_bad_policy_names_the_line_at_fault(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(PolicyError) as caught:
        load(path)
    assert caught.value.line == line, str(caught.value)
    assert f"{path} line {line}: " in str(caught.value)
    assert words in str(caught.value)


def test_notify_must_be_below_page(tmp_path: Path) -> None:
    path = write(tmp_path, "[alerts]\npage_at = 2\nnotify_at = 3\n")
    with pytest.raises(PolicyError, match=r"line 3: \[alerts\] notify_at \(3.0\) must be .* below"):
        load(path)


ACTIONS = """\
[alerts]

[[alerts.actions]]
function = "pay"
scale = { min = 2 }

[[alerts.actions]]
function = "pay"
metric = "throttles"
at = "notify"
scale = { reserved = 50 }
"""


def test_actions_read_as_written(tmp_path: Path) -> None:
    policy = load(write(tmp_path, ACTIONS))
    assert policy is not None
    first, second = policy.actions
    assert (first.function, first.metric, first.at.name, first.minimum, first.reserved) == (
        "pay",
        None,
        "PAGE",
        2,
        None,
    )
    assert (second.metric, second.at.name, second.reserved) == ("throttles", "NOTIFY", 50)


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("scale = { reserved = 50 }", "scale = { reserved = -1 }"), 11, "scale must be"),
        (("scale = { min = 2 }", "scale = { max = 2 }"), 5, "scale must be"),
        (('metric = "throttles"', 'metric = "queue_age"'), 9, "metric must be one of"),
        (('at = "notify"', 'at = "always"'), 10, 'at must be "page" or "notify"'),
    ],
)
def test_a_bad_action_names_its_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    path = write(tmp_path, ACTIONS.replace(change[0], change[1], 1))
    with pytest.raises(PolicyError) as caught:
        load(path)
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)


MORE_ACTIONS = """\
[alerts]

[[alerts.actions]]
function = "pay"
rollback = true

[[alerts.actions]]
function = "worker"
metric = "error_rate"
drain = "orders"

[[alerts.actions]]
function = "worker"
drain = true
"""


def test_rollback_and_drain_read_as_written(tmp_path: Path) -> None:
    policy = load(write(tmp_path, MORE_ACTIONS))
    assert policy is not None
    rollback, drain, every = policy.actions
    assert (rollback.kind, rollback.function, rollback.metric) == ("rollback", "pay", None)
    assert (drain.kind, drain.queues, every.queues) == ("drain", ("orders",), None)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("rollback = true", "rollback = 1"), 5, "rollback must be true"),
        (('drain = "orders"', "drain = 3"), 10, "drain must be true"),
        (("drain = true", "drain = true\nscale = { min = 1 }"), 14, "exactly one of"),
        (('function = "pay"\nrollback = true', 'function = "pay"'), 4, "exactly one of"),
        (("drain = true", "undo = true"), 14, "unknown key 'undo'"),
    ],
)
def test_a_bad_rollback_or_drain_names_its_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    path = write(tmp_path, MORE_ACTIONS.replace(change[0], change[1], 1))
    with pytest.raises(PolicyError) as caught:
        load(path)
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)
