"""FineWeb quality rules (Penedo et al. 2024): punctuation, short lines, duplicated lines, lists."""

from __future__ import annotations

from slm_curator.config import FineWebConfig
from slm_curator.filters.rules import violations
from slm_curator.text.lines import duplicates
from slm_curator.text.tokenize import sentence_terminals


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


def reasons(s: dict[str, float], cfg: FineWebConfig) -> list[str]:
    if not s["fineweb_lines"]:
        return ["fineweb_empty"]
    out = []
    ratio = s["fineweb_line_punct_ratio"]
    if ratio < cfg.line_punct_thr and not (ratio == 0 and cfg.line_punct_exclude_zero):
        out.append("fineweb_line_punct_ratio")
    return out + violations(
        s,
        [
            ("fineweb_short_line_ratio", "fineweb_short_line_ratio", "max", cfg.short_line_thr),
            ("fineweb_char_dup_ratio", "fineweb_char_dup_ratio", "max", cfg.char_duplicates_ratio),
            ("fineweb_list_ratio", "fineweb_list_ratio", "max", cfg.new_line_ratio),
        ],
    )
