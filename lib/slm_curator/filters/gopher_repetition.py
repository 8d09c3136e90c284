"""Gopher repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams.

The n-gram statistics dominate the cost of all heuristics, so words are mapped to integer ids once and
each n-gram becomes one 64-bit rolling hash (numpy); the "most frequent n-gram" fraction is then a
`np.unique`, and only the greedy duplicated-n-gram scan (which skips past each repeat, as the paper's
definition requires) remains a loop, over integers instead of joined strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slm_curator.errors import ConfigError
from slm_curator.filters.family import Document, Family, Rule, Signal
from slm_curator.text.lines import duplicates, newline_lines, paragraphs


@dataclass
class GopherRepetitionConfig:
    """Gopher repetition limits (Rae et al. 2021, table A1)."""

    enabled: bool = True
    # Most duplicated lines (fraction of lines).
    dup_line_frac: float = 0.3
    # Most duplicated paragraphs (fraction of paragraphs).
    dup_para_frac: float = 0.3
    # Most characters in duplicated lines.
    dup_line_char_frac: float = 0.2
    # Most characters in duplicated paragraphs.
    dup_para_char_frac: float = 0.2
    # n -> max fraction of characters in the most frequent n-gram
    top_n_grams: dict[str, float] = field(default_factory=lambda: {"2": 0.2, "3": 0.18, "4": 0.16})
    # n -> max fraction of characters in duplicated n-grams
    dup_n_grams: dict[str, float] = field(
        default_factory=lambda: {"5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10}
    )


_MULT = np.uint64(0x9E3779B97F4A7C15)


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 per n-gram window (polynomial hash; overflow wraps by design)."""
    count = len(ids) - n + 1
    h = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _MULT + ids[k : k + count]
    return h


def top_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int) -> int:
    """Characters covered by the most frequent n-gram (joined with spaces) times its count.

    Ties in count go to the n-gram seen first, as with a counter's most_common.
    """
    hashes = _ngram_hashes(ids, n)
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    best = counts.max()
    pos = first[counts == best].min()
    return int(best) * (int(lengths[pos : pos + n].sum()) + n - 1)


def duplicated_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int) -> int:
    """Characters in n-grams that repeat an earlier one, scanning left to right and skipping repeats."""
    hashes_np = _ngram_hashes(ids, n)
    _, first, inverse = np.unique(hashes_np, return_index=True, return_inverse=True)
    repeats = np.flatnonzero(first[inverse] < np.arange(len(hashes_np)))
    if repeats.size == 0:
        return 0  # no n-gram occurs twice: nothing to scan
    # Before the first repeat every window is visited in order, so the scan can start there.
    start = int(repeats[0])
    hashes = hashes_np.tolist()
    window_chars = np.convolve(lengths, np.ones(n, dtype=np.int64), mode="valid").tolist()
    seen: set[int] = set(hashes[:start])
    total, i, last = 0, start, len(hashes)
    while i < last:
        h = hashes[i]
        if h in seen:
            total += window_chars[i]
            i += n
        else:
            seen.add(h)
            i += 1
    return total


def _sizes(grams: dict[str, float]) -> list[int]:
    return sorted(int(k) for k in grams)


def signals(text: str, tokens: list[str], cfg: GopherRepetitionConfig) -> dict[str, float]:
    n_chars = len(text) or 1
    paras = paragraphs(text)
    para_dups, para_chars = duplicates(paras)
    lines = newline_lines(text)
    line_dups, line_chars = duplicates(lines)
    out = {
        "gopher_rep_dup_para_frac": para_dups / len(paras),
        "gopher_rep_dup_para_char_frac": para_chars / n_chars,
        "gopher_rep_dup_line_frac": line_dups / len(lines),
        "gopher_rep_dup_line_char_frac": line_chars / n_chars,
    }
    # Python's string hash as the word id: C-speed, and 64-bit collisions are negligible per document.
    ids = np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    for n in _sizes(cfg.top_n_grams):
        frac = top_ngram_chars(ids, lengths, n) / n_chars if len(tokens) >= n else 0.0
        out[f"gopher_rep_top_{n}_gram_char_frac"] = frac
    repeated = True
    for n in _sizes(cfg.dup_n_grams):
        # A repeated n-gram contains a repeated (n-1)-gram: once none repeats, no longer one does.
        chars = duplicated_ngram_chars(ids, lengths, n) if repeated and len(tokens) >= n else 0
        repeated = chars > 0
        out[f"gopher_rep_dup_{n}_gram_char_frac"] = chars / n_chars
    return out


LINE_KEYS = ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")


class GopherRepetition(Family):
    name = "gopher_repetition"
    config = GopherRepetitionConfig

    def signals(self, cfg: GopherRepetitionConfig) -> list[Signal]:
        # Overlapping windows count each time they occur: the top n-gram's share can exceed 1
        # ("a a a a" holds "a a" three times); duplicated n-grams are counted without overlap.
        return [
            *(Signal(f"gopher_rep_{key}", 0.0, 1.0) for key in LINE_KEYS),
            *(Signal(f"gopher_rep_top_{n}_gram_char_frac") for n in _sizes(cfg.top_n_grams)),
            *(Signal(f"gopher_rep_dup_{n}_gram_char_frac", 0.0, 1.0) for n in _sizes(cfg.dup_n_grams)),
        ]

    def rules(self, cfg: GopherRepetitionConfig) -> list[Rule]:
        return [
            *(Rule(f"gopher_rep_{key}", f"gopher_rep_{key}", "max", getattr(cfg, key)) for key in LINE_KEYS),
            *(
                Rule(f"gopher_rep_top_{n}_gram", f"gopher_rep_top_{n}_gram_char_frac", "max", v)
                for n, v in cfg.top_n_grams.items()
            ),
            *(
                Rule(f"gopher_rep_dup_{n}_gram", f"gopher_rep_dup_{n}_gram_char_frac", "max", v)
                for n, v in cfg.dup_n_grams.items()
            ),
        ]

    def check(self, cfg: GopherRepetitionConfig) -> None:
        for key in ("top_n_grams", "dup_n_grams"):
            bad = [n for n in getattr(cfg, key) if not (n.isdigit() and int(n) >= 1)]
            if bad:
                raise ConfigError(
                    f"filter.gopher_repetition.{key}.{bad[0]}: the key is an n-gram size; allowed values: "
                    "integers >= 1, e.g. filter.gopher_repetition.top_n_grams.5=0.15"
                )

    def compute(self, doc: Document, cfg: GopherRepetitionConfig) -> dict[str, float]:
        return signals(doc.text, doc.tokens, cfg)


FAMILY = GopherRepetition()
