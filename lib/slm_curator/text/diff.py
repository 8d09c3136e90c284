"""Word-level differences of two near-duplicate texts, marked for reading side by side."""

from __future__ import annotations

import difflib


def marked_diff(a: str, b: str, context: int = 8) -> tuple[str, str]:
    """(a, b) with words only one side has wrapped as [-removed-] / {+added+}; long equal runs elided."""
    wa, wb = a.split(), b.split()
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if op == "equal":
            run = wa[i1:i2]
            if len(run) > 2 * context:
                run = [*run[:context], f"…({len(run) - 2 * context} equal words)…", *run[-context:]]
            left += run
            right += run
            continue
        if i2 > i1:
            left.append("[-" + " ".join(wa[i1:i2]) + "-]")
        if j2 > j1:
            right.append("{+" + " ".join(wb[j1:j2]) + "+}")
    return " ".join(left), " ".join(right)
