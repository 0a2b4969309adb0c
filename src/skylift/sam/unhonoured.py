"""What a template declares that skylift does not honour, said once at load.

Each note names the resource, the property (or event) and what happens instead; the
loader logs them all as one warning, so nothing in a template is ignored silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("skylift.sam")

# Function properties that only describe the deployment (IAM, tags, metadata, packaging):
# nothing runs differently on skylift for them, so they need no note. IAM is one note of
# its own (see `Notes.iam`).
WITHOUT_EFFECT = frozenset(
    {
        "Description",
        "Tags",
        "PropagateTags",
        "Architectures",
        "AutoPublishAlias",
        "AutoPublishAliasAllProperties",
        "AutoPublishCodeSha256",
        "VersionDescription",
        "VersionDeletionPolicy",
        "DeploymentPreference",
        "CodeSigningConfigArn",
        "KmsKeyArn",
        "RecursiveLoop",
        "RuntimeManagementConfig",
        "Metadata",
    }
)
IAM = frozenset({"Role", "Policies", "PermissionsBoundary", "RolePath", "AssumeRolePolicyDocument"})

# Function properties skylift reads (see `function.py` and the modules it calls).
HONOURED = frozenset(
    {
        "Handler",
        "Runtime",
        "CodeUri",
        "InlineCode",
        "Timeout",
        "MemorySize",
        "Environment",
        "ReservedConcurrentExecutions",
        "ProvisionedConcurrencyConfig",
        "FunctionName",
        "Events",
        "PackageType",
        "EventInvokeConfig",
        "DeadLetterQueue",
        "LoggingConfig",
        "Layers",
        "FunctionUrlConfig",
        "TenancyConfig",
    }
    | WITHOUT_EFFECT
    | IAM
)
HONOURED_CFN = (
    HONOURED - {"CodeUri", "InlineCode", "Events", "DeadLetterQueue", "FunctionUrlConfig"}
) | {"Code"}

# What happens instead, for the properties real templates use most.
INSTEAD = {
    "Tracing": "no X-Ray traces are recorded",
    "VpcConfig": "the function reaches the network as the host does",
    "EphemeralStorage": "/tmp is the instance's own, limited by the host's disk",
    "FileSystemConfigs": "no EFS file system is mounted: its path does not exist",
    "SnapStart": "every instance starts cold",
    "ImageConfig": "ignored: skylift runs zip functions",
    "DeadLetterConfig": "failed asynchronous invocations are not sent to it",
    "CodeUri": "ignored",
}

# Resource types with nothing to run or create locally.
QUIET_TYPES = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        "AWS::CloudFormation::WaitConditionHandle",
    }
)


class Notes:
    """The template's unhonoured declarations, in the order they were found."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._iam: list[str] = []

    def add(self, where: str, instead: str) -> None:
        """`where` (e.g. "function 'Hello' property Tracing") is not honoured: `instead`."""
        line = f"{where}: {instead}"
        if line not in self.items:
            self.items.append(line)

    def iam(self, logical_id: str) -> None:
        self._iam.append(logical_id)

    def properties(
        self,
        where: str,
        properties: Mapping[str, Any],
        honoured: Iterable[str],
        instead: str,
        specific: Mapping[str, str] | None = None,
    ) -> None:
        """A note for each property of `properties` outside `honoured`: what happens
        instead is `specific`'s for that property, else `instead`."""
        known = set(honoured)
        for key in properties:
            if key not in known:
                self.add(f"{where} property {key}", (specific or {}).get(key, instead))

    def lines(self) -> list[str]:
        lines = list(self.items)
        if self._iam:
            lines.append(
                f"IAM ({', '.join(self._iam)}: Role, Policies): not enforced; every function "
                "may call every API skylift serves"
            )
        return lines

    def report(self, template: str) -> None:
        """One warning naming every note, if there is any."""
        lines = self.lines()
        if lines:
            log.warning(
                "template %s declares what skylift does not honour:\n  - %s",
                template,
                "\n  - ".join(lines),
            )


# Resource types skylift serves, or reads elsewhere in the loader.
SERVED_TYPES = frozenset(
    {
        "AWS::Serverless::Function",
        "AWS::Lambda::Function",
        "AWS::SQS::Queue",
        "AWS::S3::Bucket",
        "AWS::Serverless::LayerVersion",
        "AWS::Lambda::LayerVersion",
        "AWS::Scheduler::Schedule",
        "AWS::ApiGateway::ApiKey",
        "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::UsagePlanKey",
        "AWS::Serverless::Api",  # its Auth and Models: sam/api_auth.py, which notes the rest
        "AWS::Serverless::HttpApi",
        "AWS::Lambda::Url",
    }
)
INSTEAD_OF_TYPE = {
    "AWS::Events::Rule": "not connected: its targets are not invoked",
    "AWS::Lambda::EventSourceMapping": "not connected: declare the queue as an SQS event of "
    "the function",
}


def note_resource(notes: Notes, logical_id: str, resource: Mapping[str, Any]) -> None:
    """A note for a resource of a type skylift neither serves nor can ignore harmlessly."""
    kind = str(resource.get("Type"))
    if kind in SERVED_TYPES or kind in QUIET_TYPES:
        return
    service = kind.split("::")[1] if kind.count("::") >= 2 else kind
    notes.add(
        f"resource {logical_id!r} ({kind})",
        INSTEAD_OF_TYPE.get(
            kind, f"not created: skylift does not serve {service}, so calls to it fail"
        ),
    )
