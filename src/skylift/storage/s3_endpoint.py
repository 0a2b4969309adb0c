"""The external S3 endpoint behind ``S3Store``: one boto3 client, and its failures in
skylift's words.

Every call goes through ``Endpoint.call``, which turns the endpoint's error codes into
the ``StorageError`` of the same S3 code (named after skylift's bucket, not the external
one), and a connection failure into ``ServiceUnavailable`` (503, which SDKs retry) with a
hint naming the endpoint. An outage is also logged as a warning, once until it clears.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from skylift.errors import SkyliftError
from skylift.storage import errors
from skylift.storage.protocol import MAX_METADATA_BYTES
from skylift.storage.s3_url import S3Target

logger = logging.getLogger("skylift.storage")

# botocore's codes for an object or bucket that is not there, by operation kind.
_MISSING = ("404", "NoSuchKey", "NotFound")
_UNAVAILABLE = ("ServiceUnavailable", "SlowDown", "503", "RequestTimeout")


class Endpoint:
    """A boto3 S3 client for ``target``, with the server's own AWS credentials."""

    def __init__(
        self, target: S3Target, *, connect_timeout: float = 3.0, read_timeout: float = 60.0
    ) -> None:
        import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
        from botocore.config import Config

        self.target = target
        session = boto3.session.Session(profile_name=target.profile)
        self.client: Any = session.client(
            "s3",
            endpoint_url=target.endpoint,
            region_name=target.region,
            config=Config(
                s3={"addressing_style": "path" if target.endpoint else "auto"},
                # A few quick retries; then the S3 API answers 503 and its client retries.
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=32,
                # The S3 API already verified what clients sent; checksums are skylift's.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._down = threading.Event()

    def call(
        self,
        operation: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        upload: str | None = None,
        **params: Any,
    ) -> Any:
        """``client.<operation>(**params)``; failures as ``StorageError``s.

        ``bucket``, ``key`` and ``upload`` (skylift's names and upload id) are what an
        error reports.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = getattr(self.client, operation)(**params)
        except ClientError as exc:
            raise self._translate(exc, bucket, key, upload) from exc
        except BotoCoreError as exc:
            raise self._outage(str(exc)) from exc
        if self._down.is_set():
            self._down.clear()
            logger.warning("skylift: the S3 endpoint %s answers again", self.target.shown)
        return answer

    def check(self) -> None:
        """Raise ``SkyliftError`` saying what to do unless the endpoint answers ListBuckets."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.list_buckets()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            detail = f"it answered {error.get('Code')}: {error.get('Message')}"
        except BotoCoreError as exc:
            detail = str(exc)
        else:
            return
        raise SkyliftError(
            f"--objects {self.target.url}: the S3 endpoint {self.target.shown} does not "
            f"answer ListBuckets ({detail}). Start it (or correct the address), and give "
            "skylift credentials it accepts through the server's AWS environment "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or ?profile=NAME in the URL)"
        )

    def _outage(self, detail: str) -> errors.ServiceUnavailable:
        hint = (
            f"the S3 endpoint {self.target.shown} is unreachable ({detail}); check that it "
            "runs and that this server can reach it"
        )
        if not self._down.is_set():
            self._down.set()
            logger.warning("skylift: %s", hint)
        return errors.ServiceUnavailable(hint)

    def _translate(
        self, exc: Any, bucket: str | None, key: str | None, upload: str | None
    ) -> errors.StorageError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "") or code)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        name = bucket or ""
        if code == "NoSuchBucket":
            return errors.NoSuchBucket(name)
        if code in _MISSING and key is not None:
            return errors.NoSuchKey(name, key)
        if code in _MISSING:
            return errors.NoSuchBucket(name)
        simple: dict[str, type[errors.StorageError]] = {
            "BucketAlreadyOwnedByYou": errors.BucketAlreadyOwnedByYou,
            "BucketAlreadyExists": errors.BucketAlreadyExists,
            "BucketNotEmpty": errors.BucketNotEmpty,
            "NoSuchBucketPolicy": errors.NoSuchBucketPolicy,
        }
        if code in simple:
            return simple[code](name)
        if code == "PreconditionFailed" or status == 412:
            return errors.PreconditionFailed(str(error.get("Condition", "If-Match")))
        if code == "ConditionalRequestConflict":
            return errors.ConditionalRequestConflict(key or "")
        if code == "NoSuchUpload":
            return errors.NoSuchUpload(upload or "")
        if code == "MetadataTooLarge":
            return errors.MetadataTooLarge(name, key or "", 0, MAX_METADATA_BYTES)
        if code in _UNAVAILABLE or status == 503:
            return self._outage(f"it answered {code or status}: {message}")
        failure = errors.StorageError(
            "We encountered an internal error. Please try again.",
            bucket=bucket,
            key=key,
            hint=f"the S3 endpoint {self.target.shown} answered {code or status}: {message}"
            + (
                "; check the server's AWS credentials for it"
                if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")
                else ""
            ),
        )
        logger.warning("skylift: %s", failure.hint)
        return failure
