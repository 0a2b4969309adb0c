"""The gateway tests' raw sockets (`raw_http.connect`) are closed after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from raw_http import close_opened


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    close_opened()
