"""`skylift export sam`: an AWS SAM template that deploys the app's functions to Lambda.

Everything skylift reads from a template is written back (functions, triggers, queues
with their attributes and dead-letter queues, buckets, asynchronous settings and
destinations, reserved and provisioned concurrency, LoggingConfig), so a template-loaded
app exports to an equivalent template. What only skylift has (`spawn`, `idle_timeout`)
has no Lambda setting and is left out, with a note.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skylift.export.model import AppModel
from skylift.export.plan import ExportError, File, Plan
from skylift.export.sam_events import Ids, Template, arn, bucket_resource, events, queue_resource
from skylift.spec import DEFAULT_TMP, PROVIDED_RUNTIMES, FunctionSpec
from skylift.triggers import AsyncConfig, Destination

TRANSFORM = "AWS::Serverless-2016-10-31"
PROVISIONED_ALIAS = "live"  # provisioned concurrency needs a published version's alias


@dataclass(frozen=True)
class SamExporter:
    """Plan `out` (a template file); CodeUri paths are relative to its folder."""

    out: Path

    def plan(self, app: AppModel) -> Plan:
        ids = Ids()
        notes: list[str] = []
        for spec in app.specs:
            ids.function(spec.name)
        functions = {ids.function(s.name): self.function(ids, s, notes) for s in app.specs}
        resources: dict[str, Any] = {}
        for name, attributes in app.resources.queues.items():
            resources[ids.queue(name)] = queue_resource(ids, name, attributes)
        for name in app.resources.buckets:
            resources[ids.bucket(name)] = bucket_resource(name)
        # Queues named only by a redrive policy or a trigger get SQS's defaults.
        for name, logical in list(ids.queues.items()):
            resources.setdefault(logical, queue_resource(ids, name, {}))
        for name, logical in ids.buckets.items():
            resources.setdefault(logical, bucket_resource(name))
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": TRANSFORM,
            "Description": f"{app.name}: exported by `skylift export sam`",
            "Resources": {**functions, **dict(sorted(resources.items()))},
        }
        if not app.target.endswith((".yaml", ".yml", ".json")) and not _requires_skylift(app):
            notes.append(
                f"the handlers' module imports skylift (App): add skylift to "
                f"{app.code_dir / 'requirements.txt'} so `sam build` packages it"
            )
        text = yaml.safe_dump(template, sort_keys=False, default_flow_style=False, width=100)
        return Plan((File(self.out.name, text, "SAM template", app.name),), tuple(notes))

    def function(self, ids: Ids, spec: FunctionSpec, notes: list[str]) -> Template:
        if spec.runtime_command and spec.runtime not in PROVIDED_RUNTIMES:
            raise ExportError(
                f"function {spec.name!r} runs its own process (runtime_command), which "
                "Lambda has no setting for: package it as a container image or a provided "
                "runtime's bootstrap, or leave it out of the app for this export"
            )
        code_uri = os.path.relpath(spec.code_dir, self.out.resolve().parent)
        properties: dict[str, Any] = {
            "FunctionName": spec.name,
            "Handler": spec.handler,
            "Runtime": spec.runtime,
            "CodeUri": Path(code_uri).as_posix(),
            "Timeout": math.ceil(spec.timeout),
            "MemorySize": spec.memory,
        }
        if spec.timeout != math.ceil(spec.timeout):
            notes.append(
                f"{spec.name}: Lambda's Timeout is whole seconds: {spec.timeout} -> "
                f"{math.ceil(spec.timeout)}"
            )
        if spec.ephemeral_storage != DEFAULT_TMP:
            properties["EphemeralStorage"] = {"Size": spec.ephemeral_storage}
        if spec.environment:
            properties["Environment"] = {"Variables": dict(spec.environment)}
        if spec.max_concurrency is not None:
            properties["ReservedConcurrentExecutions"] = spec.max_concurrency
        if spec.min_instances:
            properties["AutoPublishAlias"] = PROVISIONED_ALIAS
            properties["ProvisionedConcurrencyConfig"] = {
                "ProvisionedConcurrentExecutions": spec.min_instances
            }
        if spec.log_config.format == "JSON":
            logging: dict[str, str] = {"LogFormat": "JSON"}
            if spec.log_config.level is not None:
                logging["ApplicationLogLevel"] = spec.log_config.level
            properties["LoggingConfig"] = logging
        properties.update(asynchronous(ids, spec.async_config))
        triggers = events(ids, spec)
        if triggers:
            properties["Events"] = triggers
        for setting, value in (("spawn", spec.spawn), ("idle_timeout", spec.idle_timeout)):
            if value:
                notes.append(
                    f"{spec.name}: {setting} is skylift's own; Lambda has no setting for it"
                )
        return {"Type": "AWS::Serverless::Function", "Properties": properties}


def asynchronous(ids: Ids, config: AsyncConfig) -> dict[str, Any]:
    """EventInvokeConfig and DeadLetterQueue, when they differ from Lambda's defaults."""
    result: dict[str, Any] = {}
    default = AsyncConfig()
    invoke: dict[str, Any] = {}
    if (config.max_retries, config.max_event_age) != (default.max_retries, default.max_event_age):
        invoke["MaximumRetryAttempts"] = config.max_retries
        invoke["MaximumEventAgeInSeconds"] = config.max_event_age
    destinations = {
        key: _destination(ids, destination)
        for key, destination in (("OnSuccess", config.on_success), ("OnFailure", config.on_failure))
        if destination is not None
    }
    if destinations:
        invoke["DestinationConfig"] = destinations
    if invoke:
        result["EventInvokeConfig"] = invoke
    if config.dead_letter_queue is not None:
        result["DeadLetterQueue"] = {
            "Type": "SQS",
            "TargetArn": arn(ids.queue(config.dead_letter_queue)),
        }
    return result


def _destination(ids: Ids, destination: Destination) -> dict[str, Any]:
    if destination.kind == "queue":
        return {"Type": "SQS", "Destination": arn(ids.queue(destination.name))}
    return {"Type": "Lambda", "Destination": arn(ids.function(destination.name))}


def _requires_skylift(app: AppModel) -> bool:
    requirements = app.code_dir / "requirements.txt"
    if not requirements.is_file():
        return False
    lines = requirements.read_text(encoding="utf-8", errors="replace").splitlines()
    return any(line.strip().lower().startswith("skylift") for line in lines)
