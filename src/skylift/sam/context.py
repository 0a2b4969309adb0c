"""What every function of a template shares while it is read: its folder, its buckets,
its layers and the notes on what is not honoured."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from skylift.sam.build import Install
from skylift.sam.unhonoured import Notes

if TYPE_CHECKING:
    from skylift.sam.api_auth import TemplateApis

# Where code skylift prepares (inline code, unpacked zips, installed requirements) goes,
# beside the template. Not under `.skylift/`: sandboxed instances never see the server's
# state there, and they must read this.
BUILD_DIR = ".skylift-build"


@dataclass(frozen=True)
class Layer:
    """A layer declared in the template with a local ContentUri."""

    logical_id: str
    content_dir: Path


@dataclass(frozen=True)
class TemplateContext:
    base_dir: Path
    buckets: Collection[str] = frozenset()  # the names of the template's buckets
    layers: Mapping[str, Layer] = field(default_factory=dict)  # by logical id
    notes: Notes = field(default_factory=Notes)
    installs: list[Install] = field(default_factory=list)  # requirements to install
    apis: TemplateApis | None = None  # read once functions are named (FunctionArn)

    @property
    def build_root(self) -> Path:
        return self.base_dir / BUILD_DIR
