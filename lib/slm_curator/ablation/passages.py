"""Clean reference text cut into passages: whole paragraphs, about `chars` characters each."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def passages(text: str, chars: int) -> Iterator[str]:
    """Consecutive paragraphs joined until a passage reaches `chars`; a longer paragraph stands alone."""
    current: list[str] = []
    size = 0
    for paragraph in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n")):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        size += len(paragraph) + (2 if current else 0)  # the length of the joined passage
        current.append(paragraph)
        if size >= chars:
            yield "\n\n".join(current)
            current, size = [], 0
    if current:
        yield "\n\n".join(current)


def all_passages(texts: Iterable[str], chars: int) -> list[str]:
    return [p for t in texts for p in passages(t, chars)]
