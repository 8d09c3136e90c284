"""FineWeb quality rules (Penedo et al. 2024): punctuation, short lines, duplicated lines, lists."""

from __future__ import annotations

from dataclasses import dataclass

from slm_curator.filters.family import Document, Family, Rule, Signal
from slm_curator.text.lines import duplicates
from slm_curator.text.tokenize import sentence_terminals


@dataclass
class FineWebConfig:
    """FineWeb quality rules (Penedo et al. 2024)."""

    enabled: bool = True
    # Fewest lines ending in punctuation (fraction).
    line_punct_thr: float = 0.12
    # Do not drop documents with no such line at all.
    line_punct_exclude_zero: bool = False
    # Most short lines (fraction).
    short_line_thr: float = 0.67
    # A short line has at most this many characters.
    short_line_length: int = 30
    # Most characters in duplicated lines.
    char_duplicates_ratio: float = 0.01
    # Most newlines per word (list-like pages).
    new_line_ratio: float = 0.3


def signals(text: str, n_tokens: int, short_line_length: int = 30) -> dict[str, float]:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if not lines:
        return {
            "fineweb_line_punct_ratio": 0.0,
            "fineweb_short_line_ratio": 0.0,
            "fineweb_char_dup_ratio": 0.0,
            "fineweb_list_ratio": 0.0,
            "fineweb_lines": 0,
        }
    terminals = sentence_terminals()
    n = len(lines)
    body_chars = len(text) - text.count("\n")
    return {
        "fineweb_line_punct_ratio": sum(ln[-1] in terminals for ln in lines) / n,
        "fineweb_short_line_ratio": sum(len(ln) <= short_line_length for ln in lines) / n,
        "fineweb_char_dup_ratio": duplicates(lines)[1] / body_chars if body_chars else 0.0,
        "fineweb_list_ratio": text.count("\n") / n_tokens if n_tokens else 0.0,
        "fineweb_lines": n,
    }


SIGNALS = [
    Signal("fineweb_line_punct_ratio", 0.0, 1.0),
    Signal("fineweb_short_line_ratio", 0.0, 1.0),
    Signal("fineweb_char_dup_ratio", 0.0, 1.0),
    Signal("fineweb_list_ratio"),  # newlines per word: blank lines can put it above 1
    Signal("fineweb_lines"),
]


class FineWeb(Family):
    name = "fineweb"
    config = FineWebConfig

    def signals(self, cfg: FineWebConfig) -> list[Signal]:
        return SIGNALS

    def rules(self, cfg: FineWebConfig) -> list[Rule]:
        # A document without a non-blank line is `fineweb_empty` and nothing else.
        punct_only_if = "fineweb_line_punct_ratio" if cfg.line_punct_exclude_zero else "fineweb_lines"
        return [
            Rule("fineweb_empty", "fineweb_lines", "min", 1),
            Rule(
                "fineweb_line_punct_ratio",
                "fineweb_line_punct_ratio",
                "min",
                cfg.line_punct_thr,
                punct_only_if,
            ),
            Rule(
                "fineweb_short_line_ratio",
                "fineweb_short_line_ratio",
                "max",
                cfg.short_line_thr,
                "fineweb_lines",
            ),
            Rule(
                "fineweb_char_dup_ratio",
                "fineweb_char_dup_ratio",
                "max",
                cfg.char_duplicates_ratio,
                "fineweb_lines",
            ),
            Rule("fineweb_list_ratio", "fineweb_list_ratio", "max", cfg.new_line_ratio, "fineweb_lines"),
        ]

    def compute(self, doc: Document, cfg: FineWebConfig) -> dict[str, float]:
        return signals(doc.text, len(doc.tokens), cfg.short_line_length)


FAMILY = FineWeb()
