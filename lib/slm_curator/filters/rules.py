"""Threshold rules as data: (reason, signal, bound, limit) rows instead of one `if` per rule."""

from __future__ import annotations

from typing import Literal

Rule = tuple[str, str, Literal["min", "max"], float]


def violations(signals: dict[str, float], rules: list[Rule]) -> list[str]:
    """Reasons whose signal is below its `min` or above its `max` limit, in rule order."""
    out = []
    for reason, key, bound, limit in rules:
        value = signals[key]
        if (bound == "max" and value > limit) or (bound == "min" and value < limit):
            out.append(reason)
    return out
