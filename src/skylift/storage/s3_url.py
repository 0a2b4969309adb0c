"""``--objects s3://...``: where an external S3-compatible store is, read from one URL.

The form is ``s3://HOST[:PORT][/PREFIX][?OPTIONS]`` (HTTPS to the endpoint) or
``s3+http://HOST[:PORT][/PREFIX][?OPTIONS]`` (plain HTTP, for a server on a trusted
network or loopback). ``PREFIX`` is put before every skylift bucket's name in the
external store (``s3+http://127.0.0.1:9000/team-a-`` keeps bucket ``photos`` as
``team-a-photos``), so several skylift installations can share one endpoint. Options:
``region`` (the signing Region, default ``us-east-1``), ``profile`` (a profile of the
server's AWS config; otherwise boto3's standard chain: ``AWS_ACCESS_KEY_ID``... or the
default profile), ``aws=true`` (see below).

The endpoint is required: skylift never talks to Amazon S3 by accident. ``s3:///PREFIX``
without a host is refused unless it also says ``aws=true``, the explicit opt-in to use
Amazon S3 itself (with the server's credentials, in ``region``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from skylift.errors import SkyliftError

SCHEMES = ("s3", "s3+http")
_OPTIONS = ("region", "profile", "aws")


@dataclass(frozen=True, slots=True)
class S3Target:
    """A parsed ``--objects`` URL. ``endpoint`` is None only for Amazon S3 itself."""

    endpoint: str | None
    prefix: str
    region: str
    profile: str | None
    url: str

    @property
    def shown(self) -> str:
        """Where the buckets are, for messages: ``http://127.0.0.1:9000 (prefix team-a-)``."""
        where = self.endpoint or f"Amazon S3 ({self.region})"
        return f"{where} (bucket prefix {self.prefix!r})" if self.prefix else where


def is_s3_url(value: str) -> bool:
    """Whether ``--objects`` names an S3 endpoint rather than a folder."""
    return value.split("://", 1)[0] in SCHEMES and "://" in value


def parse(url: str) -> S3Target:
    """The target ``url`` names; ``SkyliftError`` saying what to write instead.

    Example: ``parse("s3+http://127.0.0.1:9000/sky-").endpoint == "http://127.0.0.1:9000"``.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise SkyliftError(
            f"--objects {url}: the scheme must be s3:// (HTTPS) or s3+http:// (plain HTTP)"
        )
    if parts.username or parts.password:
        raise SkyliftError(
            f"--objects {url}: credentials do not go in the URL; skylift reads them from the "
            "server's AWS environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
            "?profile=NAME of ~/.aws/credentials)"
        )
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise SkyliftError(
            f"--objects {url}: unknown option {', '.join(unknown)}; "
            f"the options are {', '.join(_OPTIONS)}"
        )
    aws = options.get("aws", "false").lower()
    if aws not in ("true", "false"):
        raise SkyliftError(f"--objects {url}: aws= is true or false, not {aws!r}")
    prefix = parts.path.strip("/")
    if prefix and not all(c.islower() or c.isdigit() or c in ".-" for c in prefix):
        raise SkyliftError(
            f"--objects {url}: the bucket prefix {prefix!r} may hold only lowercase letters, "
            "digits, '.' and '-', as bucket names do"
        )
    region = options.get("region", "us-east-1")
    if not parts.hostname:
        if aws != "true":
            raise SkyliftError(
                f"--objects {url} names no endpoint. Give the S3-compatible server's address "
                "(e.g. s3+http://127.0.0.1:9000/ or s3://minio.internal/), or add ?aws=true "
                "to keep the buckets in Amazon S3 itself with this server's AWS credentials"
            )
        return S3Target(None, prefix, region, options.get("profile"), url)
    scheme = "http" if parts.scheme == "s3+http" else "https"
    return S3Target(f"{scheme}://{parts.netloc}", prefix, region, options.get("profile"), url)
