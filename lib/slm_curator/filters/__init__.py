"""Heuristic document filters: pure functions from text to signals, and from signals to drop reasons.

Each module exposes `signals(...) -> dict[str, float]` and `reasons(signals, cfg) -> list[str]`; the
reasons are snake_case and prefixed by the filter family. `document.analyze` runs them all over one
tokenisation of the text.
"""
