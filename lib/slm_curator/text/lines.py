"""Line and paragraph views of a document, and the duplicate counting the repetition rules share."""

from __future__ import annotations

import re

PARAGRAPH_SPLIT = re.compile(r"\n{2,}")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks (Gopher's paragraphs)."""
    return PARAGRAPH_SPLIT.split(text.strip())


def newline_lines(text: str) -> list[str]:
    """Lines split on runs of newlines (Gopher's lines: empty lines never count), as
    `re.split(r"\n+", text)` splits them: an empty first or last piece stays."""
    parts = text.split("\n")
    if len(parts) < 3:
        return parts
    return [parts[0], *filter(None, parts[1:-1]), parts[-1]]


def duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated items, characters in repeats): every occurrence after the first counts."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars
