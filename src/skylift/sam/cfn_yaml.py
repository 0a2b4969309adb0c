"""Read CloudFormation templates (YAML with short-form tags, or JSON) and their intrinsics.

Short tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) become the long form CloudFormation
itself uses (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, `{"Fn::Sub": ...}`), so the
rest of skylift only ever sees one shape. Nothing here executes anything: the loader
is a `yaml.SafeLoader` subclass. `Resolver` then evaluates intrinsics as a deploy with
every parameter at its Default would, and says why when only AWS could.

`Ref` and `Fn::GetAtt` of a resource return what the loader declared for it (`Physical`:
a queue's URL and ARN, a bucket's name, a function's ARN). Any other attribute gets a
stand-in ARN, recorded in `Resolver.stand_ins` so the loader can warn about it: a
function that only passes, say, a table's ARN through to boto3 still starts locally.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from skylift.errors import LoadError
from skylift.runtime.environ import ACCOUNT_ID, DEFAULT_REGION

# Short tag -> long-form key. `Ref` and `Condition` are the two without an "Fn::" prefix.
SHORT_TAGS: dict[str, str] = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "And",
            "Base64",
            "Cidr",
            "Equals",
            "FindInMap",
            "GetAtt",
            "GetAZs",
            "If",
            "ImportValue",
            "Join",
            "Not",
            "Or",
            "Select",
            "Split",
            "Sub",
        )
    },
}

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class CfnLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that also understands CloudFormation's short-form tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    key = SHORT_TAGS[node.tag[1:]]
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            # CloudFormation splits "A.B.C" at the first dot only: attribute "B.C".
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


for _tag in SHORT_TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _construct_intrinsic)

# CloudFormation has no date type: an unquoted 2024-01-01 in an environment variable
# must reach the function as the text written, not as str(datetime.date).
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse(text: str) -> Any:
    """Parse template text; raise `yaml.YAMLError` (or `ValueError`) if it is malformed.

    JSON is tried first when the text looks like it, because YAML rejects some valid
    JSON (tab indentation) and JSON errors point at the right place for JSON files.
    """
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # a YAML flow mapping, or JSON with short tags: let YAML decide
    return yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader subclass


# --- intrinsic functions ---------------------------------------------------------------


def pseudo_parameters(region: str) -> dict[str, Any]:
    """The pseudo parameters of a local "deploy": the stand-in account, in `region`."""
    return {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::StackName": "skylift",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/skylift/skylift",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


@dataclass(frozen=True)
class Physical:
    """What `Ref` and `Fn::GetAtt` return for one resource once it is "deployed"."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StandIn:
    """A `Fn::GetAtt` only AWS could answer, and the placeholder given in its place."""

    logical_id: str
    attribute: str
    resource_type: str
    value: str

    @property
    def expression(self) -> str:
        return f"{self.logical_id}.{self.attribute}"


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class NoValue:
    """`!Ref AWS::NoValue`: the property (or list item) is removed, as CloudFormation does."""


NO_VALUE = NoValue()


class Unresolvable(Exception):
    """An intrinsic that cannot be evaluated without AWS; the message says why."""


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return isinstance(key, str) and (key in ("Ref", "Condition") or key.startswith("Fn::"))


def _section(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LoadError(f"the template's {key} section must be a mapping, got {kind(value)}")
    return value


class Resolver:
    """Evaluates intrinsics as a deploy would, with each parameter at its override or Default.

    `region` is what `AWS::Region` (and every ARN built here) says.
    """

    def __init__(
        self,
        doc: Mapping[str, Any],
        *,
        region: str = DEFAULT_REGION,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.parameters = _section(doc, "Parameters")
        self.overrides = dict(overrides or {})
        self.mappings = _section(doc, "Mappings")
        self.conditions = _section(doc, "Conditions")
        self.resources = _section(doc, "Resources")
        self.region = region
        self.pseudo_parameters = pseudo_parameters(region)
        # Every GetAtt answered with a placeholder, in order; the loader warns about them.
        self.stand_ins: list[StandIn] = []
        # Logical id -> its Physical, or a function computing it on first use: a queue's
        # name may itself use `!Ref` of a parameter or of another resource.
        self._physical: dict[str, Physical | Callable[[], Physical]] = {}
        self._evaluating: set[str] = set()
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::If": self._if,
            "Fn::Base64": lambda arg: base64.b64encode(self.text(arg).encode()).decode(),
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value):
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(arg)
            function = self._functions.get(key)
            if function is None:
                raise Unresolvable(f"{key} can only be evaluated by AWS")
            return function(arg)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def text(self, value: Any) -> str:
        """Resolve `value` to one string, as CloudFormation turns scalars into strings."""
        value = self.resolve(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise Unresolvable(f"expected a single value, got {kind(value)}")

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise Unresolvable(f"Ref needs a name, got {kind(name)}")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo_parameters:
            return self.pseudo_parameters[name]
        if name in self.parameters:
            return self._parameter(name)
        if name in self.resources:
            # Ref of a resource is its physical id; for one skylift does not create, the
            # logical id stands in (Ref of a table is its name, of a role its name, ...).
            physical = self.physical(name)
            return name if physical is None else physical.ref
        raise Unresolvable(f"Ref {name} names no parameter, pseudo parameter or resource")

    def declare(self, logical_id: str, physical: Physical | Callable[[], Physical]) -> None:
        """Say what `Ref`/`Fn::GetAtt` of `logical_id` return (or how to compute it)."""
        self._physical[logical_id] = physical

    def physical(self, logical_id: str) -> Physical | None:
        """The declared `Physical` of `logical_id`, computing it on first use."""
        entry = self._physical.get(logical_id)
        if entry is None or isinstance(entry, Physical):
            return entry
        marker = f"resource:{logical_id}"
        if marker in self._evaluating:
            raise Unresolvable(f"the name of resource {logical_id} depends on itself")
        self._evaluating.add(marker)
        try:
            computed = entry()
        finally:
            self._evaluating.discard(marker)
        self._physical[logical_id] = computed
        return computed

    def _get_att(self, arg: Any) -> str:
        if isinstance(arg, str) and "." in arg:
            arg = arg.split(".", 1)
        if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[0], str):
            raise Unresolvable(f"Fn::GetAtt takes [LogicalId, Attribute], got {arg!r}")
        logical_id, attribute = arg[0], self.text(arg[1])
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute} names no resource")
        physical = self.physical(logical_id)
        if physical is not None and attribute in physical.attributes:
            return physical.attributes[attribute]
        value = f"arn:aws:skylift:{self.region}:{ACCOUNT_ID}:{logical_id}/{attribute}"
        resource_type = str(resource.get("Type", "resource"))
        self.stand_ins.append(StandIn(logical_id, attribute, resource_type, value))
        return value

    def condition(self, name: Any) -> bool:
        if not isinstance(name, str) or name not in self.conditions:
            raise Unresolvable(f"condition {name!r} is not declared under Conditions")
        if name in self._evaluating:
            raise Unresolvable(f"condition {name!r} depends on itself")
        self._evaluating.add(name)
        try:
            return self._truth(self.conditions[name])
        finally:
            self._evaluating.discard(name)

    def _truth(self, expr: Any) -> bool:
        if not is_intrinsic(expr):
            raise Unresolvable(f"a condition must be Fn::Equals/And/Or/Not, got {expr!r}")
        ((key, arg),) = expr.items()
        args = arg if isinstance(arg, list) else [arg]
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals" and len(args) == 2:
            return self.text(args[0]) == self.text(args[1])
        if key == "Fn::Not" and len(args) == 1:
            return not self._truth(args[0])
        if key == "Fn::And":
            return all(self._truth(item) for item in args)
        if key == "Fn::Or":
            return any(self._truth(item) for item in args)
        raise Unresolvable(f"{key} is not a condition function")

    def _parameter(self, name: str) -> Any:
        declaration = self.parameters[name]
        if not isinstance(declaration, dict):
            declaration = {}
        if name in self.overrides:
            default: Any = self.overrides[name]
        elif "Default" in declaration:
            default = declaration["Default"]
        else:
            raise Unresolvable(
                f"parameter {name} has no Default: pass --parameter-overrides {name}=VALUE"
            )
        declared_type = str(declaration.get("Type", "String"))
        if declared_type == "CommaDelimitedList" or declared_type.startswith("List<"):
            items = default if isinstance(default, list) else self.text(default).split(",")
            return [self.text(item) for item in items]
        return self.text(default)

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            template, variables = arg
        else:
            template, variables = arg, {}
        if not isinstance(template, str):
            raise Unresolvable(f"Fn::Sub needs a string, got {kind(template)}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):  # ${!Literal} is written out as ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return self.text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name)  # ${Queue.Arn} is Fn::GetAtt Queue.Arn
            return self.text(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, template)

    def _args(self, key: str, arg: Any, count: int) -> list[Any]:
        if not isinstance(arg, list) or len(arg) != count:
            raise Unresolvable(f"{key} takes a list of {count} items, got {arg!r}")
        return arg

    def _list(self, value: Any, key: str) -> list[Any]:
        value = self.resolve(value)
        if not isinstance(value, list):
            raise Unresolvable(f"{key} needs a list, got {kind(value)}")
        return value

    def _join(self, arg: Any) -> str:
        delimiter, items = self._args("Fn::Join", arg, 2)
        return self.text(delimiter).join(self.text(item) for item in self._list(items, "Fn::Join"))

    def _select(self, arg: Any) -> Any:
        index, items = self._args("Fn::Select", arg, 2)
        position, values = self.text(index), self._list(items, "Fn::Select")
        if not position.isdigit() or int(position) >= len(values):
            raise Unresolvable(f"Fn::Select index {position} is outside a list of {len(values)}")
        return values[int(position)]

    def _split(self, arg: Any) -> list[str]:
        delimiter, source = self._args("Fn::Split", arg, 2)
        return self.text(source).split(self.text(delimiter))

    def _find_in_map(self, arg: Any) -> Any:
        keys = [self.text(key) for key in self._args("Fn::FindInMap", arg, 3)]
        level: Any = self.mappings
        for key in keys:
            if not isinstance(level, dict) or key not in level:
                raise Unresolvable(f"Fn::FindInMap {keys} finds nothing under Mappings")
            level = level[key]
        return self.resolve(level)

    def _if(self, arg: Any) -> Any:
        name, when_true, when_false = self._args("Fn::If", arg, 3)
        return self.resolve(when_true if self.condition(name) else when_false)


def kind(value: Any) -> str:
    """How an error message names the type of a value the template gave."""
    return {list: "a list", dict: "a mapping", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
