"""S3's bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
GetBucketLocation, Put/Get/DeleteBucketPolicy, and the object listings ListObjects and
ListObjectsV2."""

from __future__ import annotations

import json
import re

from skylift.api import s3_body, s3_xml
from skylift.api.s3_request import S3Request, S3RequestError, int_param
from skylift.api.s3_response import Handler, Response, Service, xml
from skylift.storage.errors import BucketAlreadyOwnedByYou, InvalidArgument, NoSuchBucketPolicy
from skylift.storage.protocol import MAX_LIST_KEYS

SMALL_BODY = 64 * 1024  # a configuration document
MAX_POLICY = 20 * 1024  # S3's limit on a bucket policy
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


async def list_buckets(api: Service, request: S3Request, rid: str) -> Response:
    query = request.query
    prefix, token = query.get("prefix"), query.get("continuation-token")
    limit = int_param(query, "max-buckets", 10_000, low=1, high=10_000)
    region = query.get("bucket-region")
    if region is not None and not _REGION.fullmatch(region):
        raise InvalidArgument("Region value is not valid", argument="bucket-region", value=region)
    chosen = [
        b
        for b in await api.store.list_buckets()
        if b.name.startswith(prefix or "") and (token is None or b.name > token)
    ]
    chosen = [] if region not in (None, api.region) else chosen
    # The token is simply the last name sent: bucket names are listed in order.
    next_token = chosen[limit - 1].name if len(chosen) > limit else None
    body = s3_xml.list_buckets(chosen[:limit], region=api.region, prefix=prefix, token=next_token)
    return xml(body)


async def create_bucket(api: Service, request: S3Request, rid: str) -> Response:
    bucket = request.bucket or ""
    body = await s3_body.read(request, SMALL_BODY)
    try:
        constraint = s3_xml.location_constraint(body)
    except ValueError:
        raise s3_xml.malformed() from None
    _check_location(api.region, constraint)
    try:
        await api.store.create_bucket(bucket)
    except BucketAlreadyOwnedByYou:
        if api.region != "us-east-1":  # us-east-1 answers 200, for legacy compatibility
            raise
    return Response(200, [("Location", f"/{bucket}")])


def _check_location(region: str, constraint: str | None) -> None:
    # As S3: us-east-1 takes no constraint, every other Region requires its own name.
    if constraint == region != "us-east-1" or (constraint is None and region == "us-east-1"):
        return
    if constraint == "us-east-1" or (constraint is not None and not _REGION.fullmatch(constraint)):
        raise S3RequestError(
            "InvalidLocationConstraint",
            400,
            "The specified location-constraint is not valid",
            LocationConstraint=constraint,
        )
    raise S3RequestError(
        "IllegalLocationConstraintException",
        400,
        f"The {constraint or 'unspecified'} location constraint is incompatible for the "
        "region specific endpoint this request was sent to.",
    )


async def head_bucket(api: Service, request: S3Request, rid: str) -> Response:
    await api.store.head_bucket(request.bucket or "")
    return Response(
        200, [("x-amz-bucket-region", api.region), ("x-amz-access-point-alias", "false")]
    )


async def delete_bucket(api: Service, request: S3Request, rid: str) -> Response:
    await api.store.delete_bucket(request.bucket or "")
    return Response(204)


async def get_bucket_location(api: Service, request: S3Request, rid: str) -> Response:
    await api.store.head_bucket(request.bucket or "")
    # us-east-1 buckets answer an empty LocationConstraint (botocore reads it as None).
    region = "" if api.region == "us-east-1" else api.region
    return xml(s3_xml.document("LocationConstraint", s3_xml.text(region)))


async def put_bucket_policy(api: Service, request: S3Request, rid: str) -> Response:
    bucket = request.bucket or ""
    await api.store.head_bucket(bucket)
    text = (await s3_body.read(request, MAX_POLICY)).decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise S3RequestError(
            "MalformedPolicy", 400, "Policies must be valid JSON and the first byte must be '{'"
        )
    if "Statement" not in document:
        raise S3RequestError("MalformedPolicy", 400, "Missing required field Statement")
    await api.store.set_bucket_policy(bucket, text)
    return Response(204)


async def get_bucket_policy(api: Service, request: S3Request, rid: str) -> Response:
    bucket = request.bucket or ""
    policy = await api.store.get_bucket_policy(bucket)
    if policy is None:
        raise NoSuchBucketPolicy(bucket)
    return Response(200, [("Content-Type", "application/json")], policy.encode())


async def delete_bucket_policy(api: Service, request: S3Request, rid: str) -> Response:
    await api.store.set_bucket_policy(request.bucket or "", None)
    return Response(204)


async def list_objects(api: Service, request: S3Request, rid: str) -> Response:
    bucket, query = request.bucket or "", request.query
    version = 2 if "list-type" in query else 1
    if version == 2 and query["list-type"] != "2":
        raise InvalidArgument("Invalid list-type", argument="list-type", value=query["list-type"])
    encoding = query.get("encoding-type")
    if encoding not in (None, "url"):
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request",
            argument="encoding-type",
            value=encoding,
        )
    max_keys = int_param(query, "max-keys", MAX_LIST_KEYS, low=0, high=2**31 - 1)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter") or None
    token = query.get("continuation-token") if version == 2 else None
    start_after = query.get("start-after" if version == 2 else "marker")
    page = await api.store.list_objects(
        bucket,
        prefix=prefix,
        delimiter=delimiter,
        max_keys=max_keys,
        continuation_token=token,
        start_after=start_after,
    )
    body = s3_xml.list_objects(
        page,
        bucket=bucket,
        version=version,
        prefix=prefix,
        delimiter=delimiter,
        max_keys=max_keys,
        url_encoded=encoding == "url",
        continuation_token=token,
        start_after=start_after if version == 2 else None,
        marker=start_after,
        owner=version == 1 or query.get("fetch-owner") == "true",
    )
    return xml(body)


HANDLERS: dict[str, Handler] = {
    "ListBuckets": list_buckets,
    "CreateBucket": create_bucket,
    "HeadBucket": head_bucket,
    "DeleteBucket": delete_bucket,
    "GetBucketLocation": get_bucket_location,
    "PutBucketPolicy": put_bucket_policy,
    "GetBucketPolicy": get_bucket_policy,
    "DeleteBucketPolicy": delete_bucket_policy,
    "ListObjects": list_objects,
    "ListObjectsV2": list_objects,
}
