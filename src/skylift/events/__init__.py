"""API Gateway event formats: REST API proxy (1.0) and HTTP API (2.0)."""

from skylift.events.apigw_v1 import RestApiV1
from skylift.events.apigw_v2 import HttpApiV2

__all__ = ["HttpApiV2", "RestApiV1"]
