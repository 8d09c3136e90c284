"""C4 (Raffel et al. 2020): keep lines that look like prose, drop pages with code or placeholder text.

Line rules (the line is removed): a word over `max_word_length` characters, no terminal punctuation
(or an ellipsis ending), fewer than `min_words_per_line` words, "javascript", cookie/privacy/terms
phrases. Page rules (the document is dropped): "lorem ipsum" or "{" in a line that survived the
earlier line rules, and fewer than `min_num_sentences` sentences in the kept lines. The order of the
checks follows the C4 reference implementation, because it decides which lines can drop a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slm_curator.filters.family import Document, Family, Rule, Signal
from slm_curator.text.tokenize import count_sentences, words

CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


POLICY_KEYS = ("cookie", "policy", "terms")  # every phrase contains one: a cheap test settles most lines


def _mentions_policy(lower: str) -> bool:
    return any(k in lower for k in POLICY_KEYS) and any(p in lower for p in POLICY_PHRASES)


@dataclass
class C4Config:
    """C4 (Raffel et al. 2020) line cleaning and page rules; defaults as in the paper and datatrove."""

    enabled: bool = True
    # Drop lines that do not end in terminal punctuation.
    filter_no_terminal_punct: bool = True
    # Drop lines with fewer words.
    min_words_per_line: int = 3
    # Drop lines with a longer word.
    max_word_length: int = 1000
    # Drop documents with fewer sentences (0: off).
    min_num_sentences: int = 5
    # Drop documents containing lorem ipsum.
    filter_lorem_ipsum: bool = True
    # Drop lines mentioning javascript.
    filter_javascript: bool = True
    # Drop documents containing a curly bracket.
    filter_curly_bracket: bool = True
    # Drop lines with cookie/privacy-policy phrases.
    filter_policy: bool = True
    # Strip [1]-style citation markers.
    remove_citations: bool = True


def cite(line: str) -> tuple[str, list[str]] | None:
    """(the line without citation markers, its tokens), or None when it has none."""
    stripped = CITATION_RE.sub("", line)
    return None if stripped == line else (stripped, words(stripped))


def clean(lines: list[str], line_tokens: list[list[str]], cfg: C4Config) -> tuple[str, dict[str, float]]:
    """(cleaned text, signals) for a document given its lines and each line's tokens."""
    kept: list[str] = []
    long_word = no_punct = few_words = javascript = policy = 0
    sentences = 0
    lorem = curly = False
    for raw, tokens in zip(lines, line_tokens, strict=True):
        line = raw.strip()
        if not line:
            continue
        ws_words = line.split()
        if 0 < cfg.max_word_length < len(line) and max(map(len, ws_words)) > cfg.max_word_length:
            long_word += 1
            continue
        if cfg.remove_citations and "[" in line:
            cited = cite(line)
            if cited:
                line, tokens = cited
        if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
            no_punct += 1
            continue
        if len(ws_words) < cfg.min_words_per_line:
            few_words += 1
            continue
        lower = line.lower()
        if cfg.filter_lorem_ipsum and "lorem ipsum" in lower:
            lorem = True
        if cfg.filter_javascript and "javascript" in lower:
            javascript += 1
            continue
        if cfg.filter_curly_bracket and "{" in line:
            curly = True
        if cfg.filter_policy and _mentions_policy(lower):
            policy += 1
            continue
        sentences += count_sentences(tokens)
        kept.append(line)
    counts = ([len(kept), long_word, no_punct, few_words, javascript, policy], sentences, lorem, curly)
    return "\n".join(kept).strip(), signals_of(counts)


def signals_of(counts: tuple[list[int], int, bool, bool]) -> dict[str, float]:
    """The signals from (line counts in LINE_COUNTS order, sentences, lorem ipsum, curly bracket)."""
    lines, sentences, lorem, curly = counts
    return {
        **{f"c4_lines_{name}": n for name, n in zip(LINE_COUNTS, lines, strict=True)},
        "c4_sentences": sentences,
        "c4_lorem_ipsum": float(lorem),
        "c4_curly_bracket": float(curly),
    }


LINE_COUNTS = ("kept", "long_word", "no_terminal_punct", "few_words", "javascript", "policy")
SIGNALS = [
    *(Signal(f"c4_lines_{n}") for n in LINE_COUNTS),
    Signal("c4_sentences"),
    Signal("c4_lorem_ipsum", 0.0, 1.0),
    Signal("c4_curly_bracket", 0.0, 1.0),
]


class C4(Family):
    name = "c4"
    config = C4Config

    def signals(self, cfg: C4Config) -> list[Signal]:
        return SIGNALS

    def rules(self, cfg: C4Config) -> list[Rule]:
        out = []
        if cfg.filter_lorem_ipsum:
            out.append(Rule("c4_lorem_ipsum", "c4_lorem_ipsum", "max", 0))
        if cfg.filter_curly_bracket:
            out.append(Rule("c4_curly_bracket", "c4_curly_bracket", "max", 0))
        if cfg.min_num_sentences > 0:
            out.append(Rule("c4_too_few_sentences", "c4_sentences", "min", cfg.min_num_sentences))
        return out

    def compute(self, doc: Document, cfg: C4Config) -> dict[str, float]:
        doc.text_clean, signals = doc.engine.c4_clean(doc.lines, doc.line_tokens, cfg)
        return signals


FAMILY = C4()
