"""The errors the object store raises: one class per S3 error code, so the S3 API layer
renders each as S3 does.

Each error carries what an S3 XML error response needs: ``code`` (``<Code>``), ``status``
(the HTTP status), ``message`` (``<Message>``: what is wrong and what to do), and the
resource it concerns (``bucket``/``key``, rendered as ``<BucketName>``/``<Key>``; see
``details()``). Codes and statuses follow "Error responses" in the Amazon S3 API
reference; messages start with S3's own wording, so SDK users recognise them.
"""

from __future__ import annotations

from typing import ClassVar

from skylift.errors import SkyliftError


class StorageError(SkyliftError):
    """Root of every error the object store raises on purpose."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ):
        self.message = message
        self.bucket = bucket
        self.key = key
        # What to do about it, for skylift's log: the message stays S3's own wording.
        self.hint = hint
        super().__init__(f"{self.code}: {message}" + (f" ({hint})" if hint else ""))

    def details(self) -> dict[str, str]:
        """Extra elements of the S3 XML error, e.g. ``{"BucketName": "photos"}``."""
        found: dict[str, str] = {}
        if self.bucket is not None:
            found["BucketName"] = self.bucket
        if self.key is not None:
            found["Key"] = self.key
        return found


class NoSuchBucket(StorageError):
    """Raised when an operation names a bucket that does not exist."""

    code = "NoSuchBucket"
    status = 404

    def __init__(self, bucket: str) -> None:
        super().__init__(
            "The specified bucket does not exist",
            bucket=bucket,
            hint=f"create it first (aws s3 mb s3://{bucket}) or check the bucket name",
        )


class NoSuchKey(StorageError):
    """Raised when an object read names a key the bucket does not hold."""

    code = "NoSuchKey"
    status = 404

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__("The specified key does not exist.", key=key)
        self.bucket_name = bucket  # S3's NoSuchKey names only the <Key>


class BucketAlreadyOwnedByYou(StorageError):
    """Raised when CreateBucket names a bucket that already exists.

    S3 answers this in every Region but us-east-1, where, for legacy compatibility, it
    answers 200 OK instead: the S3 API layer, which knows the Region, makes that call.
    """

    code = "BucketAlreadyOwnedByYou"
    status = 409

    def __init__(self, bucket: str) -> None:
        super().__init__(
            "Your previous request to create the named bucket succeeded and you already own it.",
            bucket=bucket,
            hint="use it as it is, or delete it first to start empty",
        )


class BucketAlreadyExists(StorageError):
    """Raised when CreateBucket names a bucket another owner holds (S3's shared namespace).

    A single-owner store never raises it; it is here so every backend speaks one set of codes.
    """

    code = "BucketAlreadyExists"
    status = 409

    def __init__(self, bucket: str) -> None:
        super().__init__(
            "The requested bucket name is not available. The bucket namespace is shared by "
            "all users of the system. Please select a different name and try again.",
            bucket=bucket,
        )


class BucketNotEmpty(StorageError):
    """Raised when DeleteBucket names a bucket that still holds objects."""

    code = "BucketNotEmpty"
    status = 409

    def __init__(self, bucket: str) -> None:
        super().__init__(
            "The bucket you tried to delete is not empty",
            bucket=bucket,
            hint=f"delete its objects first (aws s3 rm s3://{bucket} --recursive)",
        )


class InvalidBucketName(StorageError):
    """Raised when CreateBucket names a bucket that breaks S3's naming rules."""

    code = "InvalidBucketName"
    status = 400

    def __init__(self, bucket: str, reason: str) -> None:
        self.reason = reason
        super().__init__(
            "The specified bucket is not valid.",
            bucket=bucket,
            hint=f"{bucket!r} {reason}; bucket names are 3-63 characters of lowercase "
            "letters, digits, dots and hyphens, and start and end with a letter or digit",
        )


class KeyTooLongError(StorageError):
    """Raised when an object key is longer than the store can hold (S3: 1024 UTF-8 bytes)."""

    code = "KeyTooLongError"
    status = 400

    def __init__(self, bucket: str, key: str, limit: str) -> None:
        super().__init__(
            "Your key is too long",
            bucket=bucket,
            key=key,
            hint=f"{len(key.encode('utf-8', 'replace'))} bytes, but {limit}",
        )


class MetadataTooLarge(StorageError):
    """Raised when an object's user metadata exceeds S3's 2 KB."""

    code = "MetadataTooLarge"
    status = 400

    def __init__(self, bucket: str, key: str, size: int, limit: int) -> None:
        super().__init__(
            "Your metadata headers exceed the maximum allowed metadata size.",
            bucket=bucket,
            key=key,
            hint=f"{size} bytes of user metadata (names plus values, UTF-8), the limit is "
            f"{limit}; store large values in the object body",
        )


class InvalidArgument(StorageError):
    """Raised when a request argument (a key, a continuation token, max-keys...) is invalid.

    ``argument``/``value`` become S3's ``<ArgumentName>``/``<ArgumentValue>``.
    """

    code = "InvalidArgument"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        argument: str,
        value: str,
        bucket: str | None = None,
        key: str | None = None,
    ) -> None:
        self.argument = argument
        self.value = value
        super().__init__(message, bucket=bucket, key=key)

    def details(self) -> dict[str, str]:
        found = super().details()
        found["ArgumentName"] = self.argument
        found["ArgumentValue"] = self.value
        return found


class CorruptStore(StorageError):
    """Raised when the store's files are not in the shape the store wrote them in.

    This is a server-side fault (S3's ``InternalError``, 500); the message names the path
    to repair.
    """

    code = "InternalError"
    status = 500


class NoSuchUpload(StorageError):
    """Raised when a multipart operation names an upload that does not exist (any more)."""

    code = "NoSuchUpload"
    status = 404

    def __init__(self, upload_id: str) -> None:
        super().__init__(
            "The specified upload does not exist. The upload ID may be invalid, or the "
            "upload may have been aborted or completed."
        )
        self.upload_id = upload_id

    def details(self) -> dict[str, str]:
        return {"UploadId": self.upload_id}


class InvalidPart(StorageError):
    """Raised when CompleteMultipartUpload lists a part that was not uploaded as listed."""

    code = "InvalidPart"
    status = 400

    def __init__(self, upload_id: str, number: int, etag: str) -> None:
        super().__init__(
            "One or more of the specified parts could not be found.  The part may not have "
            "been uploaded, or the specified entity tag may not match the part's entity tag."
        )
        self.found = {"UploadId": upload_id, "PartNumber": str(number), "ETag": etag}

    def details(self) -> dict[str, str]:
        return dict(self.found)


class InvalidPartOrder(StorageError):
    """Raised when CompleteMultipartUpload lists parts out of ascending order."""

    code = "InvalidPartOrder"
    status = 400

    def __init__(self, upload_id: str) -> None:
        super().__init__(
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        )
        self.upload_id = upload_id

    def details(self) -> dict[str, str]:
        return {"UploadId": self.upload_id}


class EntityTooSmall(StorageError):
    """Raised when a part other than the last of a multipart upload is under 5 MiB."""

    code = "EntityTooSmall"
    status = 400

    def __init__(self, number: int, size: int, minimum: int) -> None:
        super().__init__("Your proposed upload is smaller than the minimum allowed object size.")
        self.found = {
            "ProposedSize": str(size),
            "MinSizeAllowed": str(minimum),
            "PartNumber": str(number),
        }

    def details(self) -> dict[str, str]:
        return dict(self.found)


class PreconditionFailed(StorageError):
    """Raised when a conditional request's condition does not hold (HTTP 412)."""

    code = "PreconditionFailed"
    status = 412

    def __init__(self, condition: str) -> None:
        super().__init__("At least one of the pre-conditions you specified did not hold")
        self.condition = condition

    def details(self) -> dict[str, str]:
        return {"Condition": self.condition}


class ConditionalRequestConflict(StorageError):
    """Raised when a conditional write's condition held when it began, but another write
    to the key changed that before it could be stored (HTTP 409: S3 asks for a retry)."""

    code = "ConditionalRequestConflict"
    status = 409

    def __init__(self, key: str) -> None:
        super().__init__(
            "The conditional request cannot succeed due to a conflicting operation against "
            "this resource.",
            key=key,
        )


class NoSuchBucketPolicy(StorageError):
    """Raised when GetBucketPolicy asks for the policy of a bucket that has none."""

    code = "NoSuchBucketPolicy"
    status = 404

    def __init__(self, bucket: str) -> None:
        super().__init__("The bucket policy does not exist", bucket=bucket)


class BadDigest(StorageError):
    """Raised when a checksum the client sent does not match the bytes stored."""

    code = "BadDigest"
    status = 400

    def __init__(self, algorithm: str) -> None:
        super().__init__(f"The {algorithm} you specified did not match the calculated checksum.")


class ServiceUnavailable(StorageError):
    """Raised when the store's own backend (an external S3 endpoint) cannot be reached.

    S3's ``ServiceUnavailable`` (503), which SDKs retry with backoff; ``hint`` names the
    endpoint and what to do, for skylift's log.
    """

    code = "ServiceUnavailable"
    status = 503

    def __init__(self, hint: str) -> None:
        super().__init__("Service is unable to handle request.", hint=hint)


class NotImplementedHere(StorageError):
    """Raised for a call this store does not carry out: S3's ``NotImplemented`` (501)."""

    code = "NotImplemented"
    status = 501

    def __init__(self, hint: str, *, bucket: str | None = None) -> None:
        super().__init__(
            "A header you provided implies functionality that is not implemented.",
            bucket=bucket,
            hint=hint,
        )
