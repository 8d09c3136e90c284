"""Gopher repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams.

The n-gram statistics are the costliest of all heuristics, so words become integer ids once, n-grams
64-bit polynomial hashes, and each size after the smallest only looks where a shorter n-gram repeats
(`ngram_chars`); the greedy duplicated-n-gram scan, which skips past each repeat as the paper's
definition requires, visits only repeated positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

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
_MULT_INT, _MASK = int(_MULT), (1 << 64) - 1
# Below this many candidate positions a level is grouped with a dict: numpy's per-call cost would
# exceed the work (most pages have a few dozen repeated 5-grams).
SMALL = 48


def ngram_chars(tokens: list[str], top: list[int], dup: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Characters in the most frequent n-gram (times its count, joined with spaces) for each n in `top`,
    and in n-grams repeating an earlier one (a left-to-right scan that skips past each repeat, words
    without spaces) for each n in `dup`.

    An n-gram that occurs twice starts where an (n-1)-gram occurs twice, so after the smallest n only
    the positions of repeated shorter n-grams are hashed and grouped, and the greedy scan visits only
    repeated positions (the others can never be in its `seen` set). Ties in count go to the n-gram seen
    first, as with a counter's most_common. Word ids are Python's string hash (C speed; 64-bit
    collisions are negligible within a document); n-gram hashes are 64-bit polynomials over them.
    """
    n_words = len(tokens)
    top_out, dup_out = dict.fromkeys(top, 0), dict.fromkeys(dup, 0)
    sizes = sorted(set(top) | set(dup))
    if not sizes or n_words < sizes[0]:
        return top_out, dup_out
    ids = np.array(list(map(hash, tokens)), dtype=np.int64).view(np.uint64)
    cum = [0, *accumulate(map(len, tokens))]  # characters of words i..j-1: cum[j] - cum[i]
    pos = hashes = None  # positions of repeated shorter n-grams and their hashes; None: all
    done = 0  # words in each of `hashes`
    counted = set()  # sizes whose top n-gram was found (its characters may be 0: empty tokens)
    for n in sizes:
        if n > n_words:
            break
        if pos is not None and len(pos) <= SMALL and not isinstance(pos, list):
            pos, hashes, ids = pos.tolist(), hashes.tolist(), ids.tolist()
        group = _group_small if isinstance(pos, list) else _group
        pos, hashes, best, first = group(pos, hashes, ids, n, done, n_words)
        done = n
        if not best:
            break  # nothing repeats at this size, so nothing longer does
        if n in top_out:
            top_out[n] = best * (cum[first + n] - cum[first] + n - 1)
            counted.add(n)
        if n in dup_out:
            as_list = isinstance(pos, list)
            dup_out[n] = _scan(
                pos if as_list else pos.tolist(), hashes if as_list else hashes.tolist(), cum, n
            )
    for n in top_out:  # sizes where every n-gram occurs once: the first one, once
        if n >= done and n not in counted and n_words >= n:
            top_out[n] = cum[n] + n - 1
    return top_out, dup_out


def _group(pos, hashes, ids, n: int, done: int, n_words: int):
    """(positions of repeated n-grams, their hashes, the top count, its first position) in numpy;
    count 0 when nothing repeats."""
    if pos is None:
        count = n_words - n + 1
        hashes = ids[:count]
        for k in range(1, n):  # uint64 arrays wrap on overflow, silently, as a hash should
            hashes = hashes * _MULT + ids[k : k + count]
    else:
        last = np.searchsorted(pos, n_words - n, side="right")  # windows that fit
        pos, hashes = pos[:last], hashes[:last]
        for k in range(done, n):
            hashes = hashes * _MULT + ids[pos + k]
    if len(hashes) < 2:
        return pos, hashes, 0, 0
    order = hashes.argsort(kind="stable")  # stable: a run's first entry is its first position
    ordered = hashes[order]
    edge = np.empty(len(ordered) + 1, dtype=bool)  # a run of equal hashes starts at each True
    edge[0] = edge[-1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=edge[1:-1])
    starts = np.flatnonzero(edge)
    counts = starts[1:] - starts[:-1]
    best = counts.max()
    if best < 2:
        return pos, hashes, 0, 0
    first = int(order[starts[:-1][counts == best]].min())
    first = first if pos is None else int(pos[first])
    repeated = np.empty(len(ordered), dtype=bool)
    repeated[order] = np.repeat(counts > 1, counts)
    pos = np.flatnonzero(repeated) if pos is None else pos[repeated]
    return pos, hashes[repeated], int(best), first


def _group_small(pos: list[int], hashes: list[int], ids: list[int], n: int, done: int, n_words: int):
    """`_group` for a few positions, with Python ints (the same hashes, wrapped to 64 bits) and a dict."""
    extended: list[int] = []
    counts: dict[int, int] = {}
    firsts: dict[int, int] = {}
    fits = [p for p in pos if p <= n_words - n]
    for p, h in zip(fits, hashes, strict=False):  # `hashes` may run past the windows that fit
        for k in range(done, n):
            h = (h * _MULT_INT + ids[p + k]) & _MASK
        extended.append(h)
        if h in counts:
            counts[h] += 1
        else:
            counts[h] = 1
            firsts[h] = p
    best = max(counts.values(), default=0)
    if best < 2:
        return fits, extended, 0, 0
    first = min(firsts[h] for h, c in counts.items() if c == best)
    kept = [(p, h) for p, h in zip(fits, extended, strict=True) if counts[h] > 1]
    return [p for p, _ in kept], [h for _, h in kept], best, first


def _scan(positions: list[int], hashes: list[int], cum: list[int], n: int) -> int:
    """Gopher's duplicated n-gram characters over the positions of repeated n-grams, in order."""
    seen: set[int] = set()
    total, resume = 0, 0
    for p, h in zip(positions, hashes, strict=True):
        if p < resume:
            continue  # inside the last repeat: skipped, never added
        if h in seen:
            total += cum[p + n] - cum[p]
            resume = p + n
        else:
            seen.add(h)
    return total


def _sizes(grams: dict[str, float]) -> list[int]:
    return sorted(int(k) for k in grams)


def line_counts(text: str) -> tuple[int, int, int, int, int, int]:
    """(paragraphs, repeated paragraphs, their characters, lines, repeated lines, their characters)."""
    paras = paragraphs(text)
    lines = newline_lines(text)
    return len(paras), *duplicates(paras), len(lines), *duplicates(lines)


def signals(text: str, tokens: list[str], cfg: GopherRepetitionConfig, engine=None) -> dict[str, float]:
    """`engine`: kernels with the same results (`text.native.Engine`); None: this module's."""
    n_chars = len(text) or 1
    counts = engine.line_repetition if engine else line_counts
    n_paras, para_dups, para_chars, n_lines, line_dups, line_chars = counts(text)
    out = {
        "gopher_rep_dup_para_frac": para_dups / n_paras,
        "gopher_rep_dup_para_char_frac": para_chars / n_chars,
        "gopher_rep_dup_line_frac": line_dups / n_lines,
        "gopher_rep_dup_line_char_frac": line_chars / n_chars,
    }
    ngrams = engine.ngram_chars if engine else ngram_chars
    top, dup = ngrams(tokens, _sizes(cfg.top_n_grams), _sizes(cfg.dup_n_grams))
    for n, chars in top.items():
        out[f"gopher_rep_top_{n}_gram_char_frac"] = chars / n_chars
    for n, chars in dup.items():
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
        return signals(doc.text, doc.tokens, cfg, doc.engine)


FAMILY = GopherRepetition()
