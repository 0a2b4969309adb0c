"""One `skylift up` of observed_app.py shared by the logs and metrics tests (helpers the
tests import are in observe_support.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from observe_support import HERE, Served

from skylift.testing import serve


@pytest.fixture(scope="session")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    app = tmp_path_factory.mktemp("observed")
    shutil.copy(HERE / "observed_app.py", app / "app.py")
    with serve(str(app), options=["--quiet"]) as url:
        yield Served(url, app)
