"""uvicorn's httptools protocol, keeping header names as the client sent them.

ASGI lowercases header names, but a REST API (payload 1.0) event carries them in the
client's case (`event["headers"]["Content-Type"]`). We record the original names in a
parallel list under the scope key `skylift.header_names`.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_NAMES = "skylift.header_names"


class CasePreservingHttpTools(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._names: list[bytes] = []
        self.scope[HEADER_NAMES] = self._names  # type: ignore[literal-required]  # our own key

    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name)
        super().on_header(name, value)
