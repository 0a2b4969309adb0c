"""CloudWatch Logs' filter pattern for unstructured events: terms, `-term`, `"phrase"`, `?term`.

As in CloudWatch: terms are case-sensitive; an event matches when it contains every
plain term and phrase, none of the `-` ones, and, if there are `?` terms, at least one
of them. An empty pattern matches everything. Example: `ERROR -retry "Task timed out"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skylift.errors import SkyliftError


class BadFilter(SkyliftError):
    """Raised when a filter pattern cannot be read (an unclosed quote)."""


@dataclass(frozen=True)
class Filter:
    required: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    optional: tuple[str, ...] = field(default=())

    def matches(self, message: str) -> bool:
        for term in self.required:
            if term not in message:
                return False
        for term in self.excluded:
            if term in message:
                return False
        return not self.optional or any(term in message for term in self.optional)


def parse(pattern: str) -> Filter:
    """Read a pattern: `parse('ERROR -"not found"').matches("ERROR: boom")` is True."""
    required: list[str] = []
    excluded: list[str] = []
    optional: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i].isspace():
            i += 1
            continue
        target = required
        if pattern[i] in "-?" and i + 1 < n and not pattern[i + 1].isspace():
            target = excluded if pattern[i] == "-" else optional
            i += 1
        if pattern[i] == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                raise BadFilter(
                    f"the filter pattern {pattern!r} has an unclosed quote: close the phrase "
                    'with " or drop the quote'
                )
            term, i = pattern[i + 1 : end], end + 1
        else:
            end = i
            while end < n and not pattern[end].isspace():
                end += 1
            term, i = pattern[i:end], end
        if term:
            target.append(term)
    return Filter(tuple(required), tuple(excluded), tuple(optional))
