"""AWS service APIs served over HTTP as ASGI apps, each over a skylift backend."""

from skylift.api.s3 import S3Api

__all__ = ["S3Api"]
