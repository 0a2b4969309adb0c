"""docs/benchmarks.md holds one section per benchmark script; each replaces its own."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = "# Benchmarks\n\nEvery number here was produced by `make bench` on the machine named.\n"


def write_section(path: Path, name: str, text: str) -> None:
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(updated if updated.endswith("\n") else updated + "\n")
