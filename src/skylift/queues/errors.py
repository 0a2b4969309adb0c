"""The errors the queue layer raises: one per SQS error code, so the API layer maps them 1:1.

Each class carries what an SQS error response needs:

- ``code``: SQS's error code, the shape name of SQS's API model where it has one;
- ``json_type``: the name SQS's JSON protocol puts in ``__type``
  (``com.amazonaws.sqs#<json_type>``, see ``QueueError.type``) where it differs from
  ``code``: real SQS answers ``InvalidParameterValueException`` and
  ``MissingRequiredParameterException`` for its two common errors;
- ``query_code``: the legacy code SQS sends in the ``x-amzn-query-error`` header and in
  XML responses, where it differs (``AWS.SimpleQueueService.NonExistentQueue`` ...);
- ``status``: the HTTP status SQS answers with;
- ``aws_message``: what was wrong, in SQS's own words (clients may match on them): the
  only text an API answer carries;
- ``hint``: what to do about it, for skylift's log and its own output (CLI, template
  errors); ``message`` is both together.

Codes and statuses are those of the SQS API model (``com.amazonaws.sqs`` in the AWS SDKs);
``InvalidParameterValue`` and ``MissingParameter`` are SQS's common errors.
"""

from __future__ import annotations

from typing import ClassVar

from skylift.errors import OutOfSpace, SkyliftError


class QueueError(SkyliftError):
    """Root of every error the queue layer raises on purpose.

    ``entry`` is the index of the offending entry when a batch was refused as a whole, so
    the API layer can report it against the right batch entry id.
    """

    code: ClassVar[str] = "InternalError"
    json_type: ClassVar[str | None] = None
    query_code: ClassVar[str | None] = None
    status: ClassVar[int] = 400
    sender_fault: ClassVar[bool] = True

    def __init__(self, message: str, *, entry: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.aws_message = message
        self.entry = entry
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.entry is None else f"entry {self.entry}: {self.message}"

    @property
    def message(self) -> str:
        """SQS's message with the hint after it, for skylift's own output (CLI, log)."""
        return self.aws_message if self.hint is None else f"{self.aws_message} ({self.hint})"

    @property
    def type(self) -> str:
        """The JSON protocol's ``__type``, e.g. ``com.amazonaws.sqs#QueueDoesNotExist``."""
        return f"com.amazonaws.sqs#{self.json_type or self.code}"

    @property
    def aws_query_code(self) -> str:
        """The code for the ``x-amzn-query-error`` header and XML error responses."""
        return self.query_code or self.code


class QueueDoesNotExist(QueueError):
    """Raised when an operation names a queue that does not exist."""

    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"


class QueueNameExists(QueueError):
    """Raised when CreateQueue names an existing queue with different attribute values."""

    code = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class InvalidAttributeName(QueueError):
    """Raised when a queue attribute name is unknown or cannot be set on this queue."""

    code = "InvalidAttributeName"


class InvalidAttributeValue(QueueError):
    """Raised when a queue attribute value is out of range or malformed."""

    code = "InvalidAttributeValue"


class InvalidParameterValue(QueueError):
    """Raised when a request parameter (not a queue attribute) has an invalid value."""

    code = "InvalidParameterValue"
    json_type = "InvalidParameterValueException"


class MissingParameter(QueueError):
    """Raised when a required parameter is absent or empty."""

    code = "MissingParameter"
    json_type = "MissingRequiredParameterException"


class InvalidMessageContents(QueueError):
    """Raised when a message body or attribute holds characters SQS does not allow."""

    code = "InvalidMessageContents"


class ReceiptHandleIsInvalid(QueueError):
    """Raised when a receipt handle is malformed or belongs to another queue."""

    code = "ReceiptHandleIsInvalid"
    status = 404  # as SQS's API model and real SQS answer


class PurgeQueueInProgress(QueueError):
    """Raised when a queue is purged again within 60 seconds of the last purge."""

    code = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"
    status = 403


class EmptyBatchRequest(QueueError):
    """Raised when a batch operation is given no entries."""

    code = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class TooManyEntriesInBatchRequest(QueueError):
    """Raised when a batch operation is given more than 10 entries."""

    code = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class BatchRequestTooLong(QueueError):
    """Raised when the messages of one batch together exceed the queue's size limit."""

    code = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


class BatchEntryIdsNotDistinct(QueueError):
    """Raised by the API layer when two entries of one batch share an ``Id``."""

    code = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(QueueError):
    """Raised by the API layer when a batch entry ``Id`` is not 1-80 of [A-Za-z0-9_-]."""

    code = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"


class QueueDeletedRecently(QueueError):
    """Raised when CreateQueue names a queue deleted less than 60 seconds ago."""

    code = "QueueDeletedRecently"
    query_code = "AWS.SimpleQueueService.QueueDeletedRecently"


class ResourceNotFoundException(QueueError):
    """Raised when a message move task names a queue or task that does not exist."""

    code = "ResourceNotFoundException"
    status = 404


class UnsupportedOperation(QueueError):
    """Raised when a request uses an SQS feature skylift does not implement."""

    code = "UnsupportedOperation"
    query_code = "AWS.SimpleQueueService.UnsupportedOperation"


class QueueBackendClosed(QueueError):
    """Raised when a backend is used after ``close()``."""

    code = "ServiceUnavailable"
    status = 503
    sender_fault = False


class StoreFailed(QueueError):
    """Raised when the queue store itself failed (a damaged file, an I/O error): SQS's
    ``InternalError``. Nothing of the request was applied."""

    code = "InternalError"
    status = 500
    sender_fault = False


class DiskFull(StoreFailed, OutOfSpace):
    """Raised when the store's disk is full: SQS's ``ServiceUnavailable``, which SDKs retry.
    Nothing of the request was applied; once space is freed, calls succeed again."""

    code = "ServiceUnavailable"
    status = 503
