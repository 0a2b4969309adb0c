"""SQS's query protocol, as older SDKs and tools speak it: ``Action=...`` form parameters in,
XML in SQS's namespace out.

Requests are turned into the JSON protocol's parameters and served by the same actions;
their JSON results are written back as the XML SQS answers. The names below are those of
SQS's query API (the 2012-11-05 WSDL): flattened lists (``AttributeName.1``), maps
(``Attribute.1.Name`` / ``Attribute.1.Value``) and batch entries
(``SendMessageBatchRequestEntry.1.Id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from skylift.queues.errors import QueueError

NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"

# JSON list parameter -> the query name of its items.
_LISTS = {
    "AttributeNames": "AttributeName",
    "MessageAttributeNames": "MessageAttributeName",
    "MessageSystemAttributeNames": "MessageSystemAttributeName",
    "AWSAccountIds": "AWSAccountId",
    "Actions": "ActionName",
    "TagKeys": "TagKey",
}
# Query name of a map's entries -> (JSON map parameter, key name, value name). CreateQueue
# calls its tags "tags", TagQueue "Tags".
_MAPS = {
    "Attribute": ("Attributes", "Name", "Value"),
    "Tag": ("Tags", "Key", "Value"),
    "MessageAttribute": ("MessageAttributes", "Name", "Value"),
    "MessageSystemAttribute": ("MessageSystemAttributes", "Name", "Value"),
}
# Request parameters that only sign or version the request.
_ENVELOPE = (
    "Version",
    "AWSAccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "Timestamp",
    "Expires",
)
# Batch action -> the query name of its entries.
_ENTRIES = {
    "SendMessageBatch": "SendMessageBatchRequestEntry",
    "DeleteMessageBatch": "DeleteMessageBatchRequestEntry",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchRequestEntry",
}
_INTEGERS = frozenset(
    {
        "VisibilityTimeout",
        "DelaySeconds",
        "MaxNumberOfMessages",
        "WaitTimeSeconds",
        "MaxResults",
        "MaxNumberOfMessagesPerSecond",
    }
)
# Result lists -> the element each item is written as (flattened, as SQS writes them).
_RESULT_ITEMS = {
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "Messages": "Message",
    "Failed": "BatchResultErrorEntry",
    "Results": "ListMessageMoveTasksResultEntry",
}

Tree = dict[str, Any]


def parse(form: str, path: str) -> tuple[str, dict[str, Any]]:
    """The action and its JSON-protocol parameters from a query request's form text.

    A request sent to a queue's URL (as older SDKs send them) names its queue by the path.
    Example: ``parse("Action=GetQueueUrl&QueueName=jobs", "/")`` is
    ``("GetQueueUrl", {"QueueName": "jobs"})``.
    """
    tree: Tree = {}
    for key, value in parse_qsl(form, keep_blank_values=True):
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # "A=1&A.1=2": the later, nested form wins
                child = node[part] = {}
            node = child
        node.setdefault(last, value)
    action = tree.pop("Action", "")
    action = action if isinstance(action, str) else ""
    for name in _ENVELOPE:
        tree.pop(name, None)
    params = _structure(tree, action)
    if "QueueUrl" not in params and path.strip("/").count("/") == 1:
        params["QueueUrl"] = path
    return action, params


def result(action: str, body: Mapping[str, Any], request_id: str) -> bytes:
    """The XML answer for an action's JSON result."""
    inner = "".join(_member(action, name, value) for name, value in body.items())
    wrapped = f"<{action}Result>{inner}</{action}Result>" if body or _has_result(action) else ""
    return (
        f'<?xml version="1.0"?><{action}Response xmlns="{NAMESPACE}">{wrapped}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def error(error: QueueError, request_id: str) -> bytes:
    """The XML answer for an error."""
    fault = "Sender" if error.sender_fault else "Receiver"
    return (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{fault}</Type>'
        f"<Code>{_text(error.aws_query_code)}</Code><Message>{_text(error.aws_message)}"
        f"</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def _structure(tree: Tree, action: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for json_name, item in _LISTS.items():
        if item in tree:
            params[json_name] = _items(tree.pop(item))
    for entry, (json_name, key, value) in _MAPS.items():
        if entry in tree:
            if entry == "Tag" and action == "CreateQueue":
                json_name = "tags"
            params[json_name] = {
                str(e.get(key, "")): _attribute_value(e.get(value))
                for e in _items(tree.pop(entry))
                if isinstance(e, dict)
            }
    batch = _ENTRIES.get(action)
    if batch is not None and batch in tree:
        params["Entries"] = [
            _structure(e, "") if isinstance(e, dict) else e for e in _items(tree.pop(batch))
        ]
    for name, value in tree.items():
        params[name] = _scalar(name, value)
    return params


def _items(node: Any) -> list[Any]:
    """A flattened list's items (``X.1``, ``X.2``, ...) in index order."""
    if not isinstance(node, dict):
        return [node]
    indexed = [(int(k), v) for k, v in node.items() if k.isdigit()]
    return [v for _, v in sorted(indexed, key=lambda kv: kv[0])]


def _attribute_value(node: Any) -> Any:
    """A map value: a string, or a message attribute value structure."""
    if not isinstance(node, dict):
        return node
    value: dict[str, Any] = {k: v for k, v in node.items() if isinstance(v, str)}
    for query_name, json_name in (
        ("StringListValue", "StringListValues"),
        ("BinaryListValue", "BinaryListValues"),
    ):
        if query_name in node:
            value[json_name] = _items(node[query_name])
    return value


def _scalar(name: str, value: Any) -> Any:
    if name in _INTEGERS and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value  # left to the action, which refuses it in SQS's words
    return value


def _member(action: str, name: str, value: Any) -> str:
    if isinstance(value, list):
        element = _RESULT_ITEMS.get(name)
        if element is None:  # Successful: the action's own result entries
            element = f"{action}ResultEntry"
        return "".join(_element(element, item, action) for item in value)
    if isinstance(value, dict):
        key, val = ("Key", "Value") if name == "Tags" else ("Name", "Value")
        entry = {
            "Attributes": "Attribute",
            "Tags": "Tag",
            "MessageAttributes": "MessageAttribute",
        }.get(name, name)
        return "".join(
            f"<{entry}><{key}>{_text(k)}</{key}>{_element(val, v, action)}</{entry}>"
            for k, v in value.items()
        )
    return _element(name, value, action)


def _element(name: str, value: Any, action: str) -> str:
    if isinstance(value, dict):
        inner = "".join(_member(action, k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    return f"<{name}>{_text(str(value))}</{name}>"


def _text(value: str) -> str:
    # XML parsers turn a bare CR into LF; SQS writes it as a character reference.
    return escape(value).replace("\r", "&#xD;")


def _has_result(action: str) -> bool:
    """Whether SQS writes a (possibly empty) <ActionResult> for the action."""
    return action not in {
        "AddPermission",
        "ChangeMessageVisibility",
        "DeleteMessage",
        "DeleteQueue",
        "PurgeQueue",
        "RemovePermission",
        "SetQueueAttributes",
        "TagQueue",
        "UntagQueue",
    }
