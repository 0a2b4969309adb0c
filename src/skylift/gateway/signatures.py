"""The signature gate in front of the AWS APIs: verify (`sigv4.Verifier`), and refuse in
each service's own words and shapes when the signature is missing, wrong or late.

- no signature: SQS 403 MissingAuthenticationToken, S3 403 AccessDenied, Lambda 403
  MissingAuthenticationTokenException;
- malformed: SQS 400 IncompleteSignature, S3 400 AuthorizationHeaderMalformed (or
  AuthorizationQueryParametersError), Lambda 400 IncompleteSignatureException;
- unknown key: SQS 403 InvalidClientTokenId, S3 403 InvalidAccessKeyId, Lambda 403
  UnrecognizedClientException;
- wrong signature: SQS and S3 403 SignatureDoesNotMatch, Lambda 403 InvalidSignatureException;
- clock more than 15 minutes off: SQS 403 SignatureDoesNotMatch ("Signature expired: ..."),
  S3 403 RequestTimeTooSkewed, Lambda 403 InvalidSignatureException;
- a presigned URL past its expiry: S3 403 AccessDenied ("Request has expired");
- a signature version skylift does not check (SigV2 headers): 400 InvalidRequest (S3),
  IncompleteSignature (SQS, Lambda).
"""

from __future__ import annotations

import logging
import uuid

import orjson

from skylift.api import s3_xml
from skylift.api.sqs_query import NAMESPACE
from skylift.asgi_types import Receive, Scope, Send
from skylift.gateway.sigv4 import Refusal, Verifier, body_hash, read_whole, replay

logger = logging.getLogger("skylift.guard")

_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)
_S3_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)
_INVALID_TOKEN = "The security token included in the request is invalid."
_V4_ONLY = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)

# kind -> (status, SQS code, Lambda code, message for both); S3 has its own table.
_JSON: dict[str, tuple[int, str, str, str]] = {
    "missing": (
        403,
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    ),
    "malformed": (400, "IncompleteSignature", "IncompleteSignatureException", ""),
    "unknown_key": (403, "InvalidClientTokenId", "UnrecognizedClientException", _INVALID_TOKEN),
    "mismatch": (403, "SignatureDoesNotMatch", "InvalidSignatureException", _MISMATCH),
    "skewed": (403, "SignatureDoesNotMatch", "InvalidSignatureException", ""),
    "expired": (403, "SignatureDoesNotMatch", "InvalidSignatureException", "Signature expired"),
    "unsupported": (400, "IncompleteSignature", "IncompleteSignatureException", _V4_ONLY),
}
_S3: dict[str, tuple[int, str, str]] = {
    "missing": (403, "AccessDenied", "Access Denied"),
    "malformed": (400, "AuthorizationHeaderMalformed", ""),
    "unknown_key": (
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "mismatch": (403, "SignatureDoesNotMatch", _S3_MISMATCH),
    "skewed": (
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
    ),
    "expired": (403, "AccessDenied", "Request has expired"),
    "unsupported": (400, "InvalidRequest", _V4_ONLY),
}


async def verified(
    verifier: Verifier, service: str, scope: Scope, receive: Receive, send: Send
) -> Receive | None:
    """The `receive` to serve the request with when it is signed right; None when it was
    refused (and answered here)."""
    payload: str | None = None
    if service != "s3":
        body = await read_whole(receive)
        if body is None:
            await _refuse(send, service, scope, Refusal("malformed", "the body is too large"))
            return None
        payload = body_hash(body)
        receive = replay(body, receive)
    key_id, refusal = verifier.check(service, scope, payload)
    if refusal is None:
        return receive
    logger.warning(
        "refused a %s API request (%s %s) signed with %s: %s; the keys are those of --credentials",
        service,
        scope["method"],
        scope["path"],
        key_id or "no key",
        refusal.detail or refusal.kind,
    )
    await _refuse(send, service, scope, refusal)
    return None


async def _refuse(send: Send, service: str, scope: Scope, refusal: Refusal) -> None:
    request_id = str(uuid.uuid4())
    if service == "s3":
        status, code, message = _S3[refusal.kind]
        if code == "AuthorizationHeaderMalformed" and b"X-Amz-" in scope.get("query_string", b""):
            code = "AuthorizationQueryParametersError"
        body = s3_xml.error(code, message or refusal.detail, {}, request_id)
        headers = [
            (b"content-type", b"application/xml"),
            (b"x-amz-request-id", request_id.encode()),
        ]
        await _answer(send, status, headers, body)
        return
    status, sqs_code, lambda_code, message = _JSON[refusal.kind]
    message = message or refusal.detail
    if refusal.kind == "mismatch" and refusal.detail.startswith("Credential should"):
        message = refusal.detail
    headers = [(b"x-amzn-requestid", request_id.encode())]
    if service == "lambda":
        body = orjson.dumps({"Type": "User", "message": message})
        headers += [
            (b"content-type", b"application/json"),
            (b"x-amzn-errortype", lambda_code.encode()),
        ]
    elif _query_protocol(scope):
        body = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>{sqs_code}</Code><Message>{_xml(message)}</Message><Detail/></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append((b"content-type", b"text/xml"))
    else:
        body = orjson.dumps({"__type": f"com.amazon.coral.service#{sqs_code}", "message": message})
        headers += [
            (b"content-type", b"application/x-amz-json-1.0"),
            (b"x-amzn-query-error", f"{sqs_code};Sender".encode()),
        ]
    await _answer(send, status, headers, body)


def _query_protocol(scope: Scope) -> bool:
    return not any(name == b"x-amz-target" for name, _ in scope["headers"])


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
