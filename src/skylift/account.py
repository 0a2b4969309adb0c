"""The account and region every local ARN and URL names."""

from __future__ import annotations

import os

ACCOUNT_ID = "123456789012"  # AWS's documentation account: obviously not a real one
DEFAULT_REGION = "us-east-1"


def region() -> str:
    """The region from the environment (AWS_REGION, AWS_DEFAULT_REGION), as the SDKs read it."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
