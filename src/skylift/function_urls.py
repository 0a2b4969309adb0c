"""A function's URL (Lambda's `FunctionUrlConfig`, `AWS::Lambda::Url`) as plain data.

`AuthType` NONE or AWS_IAM, the `Cors` settings Lambda applies itself, and `InvokeMode`
(BUFFERED; RESPONSE_STREAM is served buffered, with a warning at load). A URL's id is
derived from the function's name, region and account, so it is the same at every start:
the host `{url-id}.lambda-url.localhost:PORT` keeps working across restarts.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skylift.account import ACCOUNT_ID
from skylift.errors import DeclarationError

AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
MAX_AGE = 86400  # Cors.MaxAge's upper bound in Lambda's API


def url_id(function: str, region: str, account_id: str = ACCOUNT_ID) -> str:
    """The 32 lowercase letters and digits of a function URL's host, as AWS shapes them.

    >>> len(url_id("hello", "us-east-1"))
    32
    """
    digest = hashlib.sha256(f"{account_id}:{region}:{function}".encode()).digest()
    return base64.b32encode(digest).decode().lower()[:32]


@dataclass(frozen=True)
class UrlCors:
    """Lambda's `Cors` for a function URL; every list is as the template gives it."""

    allow_credentials: bool = False
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "AllowCredentials": self.allow_credentials,
            "AllowHeaders": list(self.allow_headers),
            "AllowMethods": list(self.allow_methods),
            "AllowOrigins": list(self.allow_origins),
            "ExposeHeaders": list(self.expose_headers),
            "MaxAge": self.max_age,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UrlCors:
        return cls(
            bool(data.get("AllowCredentials", False)),
            tuple(data.get("AllowHeaders") or ()),
            tuple(data.get("AllowMethods") or ()),
            tuple(data.get("AllowOrigins") or ()),
            tuple(data.get("ExposeHeaders") or ()),
            data.get("MaxAge"),
        )


@dataclass(frozen=True)
class FunctionUrl:
    """A function URL: who may call it (`auth_type`), its CORS, how it answers."""

    auth_type: str = "NONE"
    cors: UrlCors | None = None
    invoke_mode: str = "BUFFERED"
    created: str = field(default="", compare=False)  # ISO time of the load, for the API

    def validate(self, function: str) -> None:
        if self.auth_type not in AUTH_TYPES:
            raise DeclarationError(
                f"function URL AuthType {self.auth_type!r} is not valid: use NONE or AWS_IAM",
                function=function,
            )
        if self.invoke_mode not in INVOKE_MODES:
            raise DeclarationError(
                f"function URL InvokeMode {self.invoke_mode!r} is not valid: use BUFFERED "
                "or RESPONSE_STREAM",
                function=function,
            )
        cors = self.cors
        if cors is not None and cors.max_age is not None:
            if isinstance(cors.max_age, bool) or not isinstance(cors.max_age, int):
                raise DeclarationError(
                    f"function URL Cors.MaxAge {cors.max_age!r} must be a whole number of seconds",
                    function=function,
                )
            if not 0 <= cors.max_age <= MAX_AGE:
                raise DeclarationError(
                    f"function URL Cors.MaxAge {cors.max_age} is out of range: use 0 to "
                    f"{MAX_AGE} seconds",
                    function=function,
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "AuthType": self.auth_type,
            "Cors": self.cors.to_dict() if self.cors is not None else None,
            "InvokeMode": self.invoke_mode,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionUrl:
        cors = data.get("Cors")
        return cls(
            data["AuthType"],
            UrlCors.from_dict(cors) if cors is not None else None,
            data.get("InvokeMode", "BUFFERED"),
            data.get("created", ""),
        )
