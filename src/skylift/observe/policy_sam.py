"""The alerting policy in a SAM template, for apps that are a template: the same
settings as skylift.toml's `[alerts]`, under the template's top-level `Metadata`
(which CloudFormation keeps and ignores, so the template still deploys unchanged):

    Metadata:
      skylift:
        alerts:
          interval: 15s
          escalate_after: 5m
          primary: {name: alice, webhook: "https://pager.example/alice"}
          channels:
            - {name: "#payments", slack: "https://hooks.slack.com/services/..."}
          actions:
            - {function: PayFunction, rollback: true}

A bad value fails at load naming the template, the line and the key:

    template.yaml line 7: Metadata.skylift.alerts: page_at must be a number at least 0, got 'x'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from skylift.observe import policy as policies
from skylift.observe.policy import Policy, PolicyError, Reader
from skylift.sam import cfn_yaml

PATH = ("Metadata", "skylift", "alerts")


def load(path: Path) -> Policy | None:
    """The policy in the template at `path`, or None when its Metadata has none.

    A template that is not YAML (or JSON) is left to the template loader to report.
    """
    text = path.read_text(encoding="utf-8")
    try:
        document = cfn_yaml.parse(text)
        root = yaml.compose(text, Loader=cfn_yaml.CfnLoader)
    except yaml.YAMLError:
        return None
    found: Any = document
    for depth, key in enumerate(PATH):
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
        if depth < len(PATH) - 1 and not isinstance(found, dict):
            where = ".".join(PATH[: depth + 1])
            line = _line(root, list(PATH[: depth + 1]), None, 0)
            raise PolicyError(path, line, f"{where} must be a mapping (holding {PATH[-1]}:)")
    locate = _locator(root)
    return Reader(path, text, locate, lambda table: f"Metadata.skylift.{table}:").policy(found)


def _locator(root: yaml.Node | None) -> Callable[[str, str, int], int | None]:
    def locate(table: str, key: str, index: int) -> int | None:
        # "alerts.actions" -> Metadata / skylift / alerts / actions (the index-th entry)
        return _line(root, ["Metadata", "skylift", *[s for s in table.split(".") if s]], key, index)

    return locate


def _line(root: yaml.Node | None, steps: list[str], key: str | None, index: int) -> int | None:
    """The 1-based line of `key` in the mapping at `steps` (its `index`-th item when a
    list), else of that mapping."""
    node = root
    for step in steps:
        if not isinstance(node, yaml.MappingNode):
            break
        found = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
        if found is None:
            break
        node = found
    if isinstance(node, yaml.SequenceNode) and 0 <= index < len(node.value):
        node = node.value[index]
    if node is None:
        return None
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if getattr(k, "value", None) == key:
                return int(k.start_mark.line) + 1
    return int(node.start_mark.line) + 1


def for_app(home: Path, template: Path | None = None) -> Policy | None:
    """The app's policy: `[alerts]` in skylift.toml in `home`, or the template's
    Metadata; PolicyError when there is none that can be used, or both hold one."""
    found = policies.find(home)
    from_file = policies.load(found) if found is not None else None
    from_template = load(template) if template is not None else None
    if from_file is not None and from_template is not None:
        assert template is not None and found is not None
        raise PolicyError(
            template,
            None,
            f"the alerting policy is both in {found} and in this template's "
            "Metadata.skylift.alerts: keep one",
        )
    return from_file or from_template
