"""C4 (Raffel et al. 2020): keep lines that look like prose, drop pages with code or placeholder text.

Line rules (the line is removed): a word over `max_word_length` characters, no terminal punctuation
(or an ellipsis ending), fewer than `min_words_per_line` words, "javascript", cookie/privacy/terms
phrases. Page rules (the document is dropped): "lorem ipsum" or "{" in a line that survived the
earlier line rules, and fewer than `min_num_sentences` sentences in the kept lines. The order of the
checks follows the C4 reference implementation, because it decides which lines can drop a page.
"""

from __future__ import annotations

import re

from slm_curator.config import C4Config
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
            stripped = CITATION_RE.sub("", line)
            if stripped != line:
                line, tokens = stripped, words(stripped)
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
        if cfg.filter_policy and any(p in lower for p in POLICY_PHRASES):
            policy += 1
            continue
        sentences += count_sentences(tokens)
        kept.append(line)
    signals = {
        "c4_lines_kept": len(kept),
        "c4_lines_long_word": long_word,
        "c4_lines_no_terminal_punct": no_punct,
        "c4_lines_few_words": few_words,
        "c4_lines_javascript": javascript,
        "c4_lines_policy": policy,
        "c4_sentences": sentences,
        "c4_lorem_ipsum": float(lorem),
        "c4_curly_bracket": float(curly),
    }
    return "\n".join(kept).strip(), signals


def reasons(s: dict[str, float], cfg: C4Config) -> list[str]:
    out = []
    if s["c4_lorem_ipsum"]:
        out.append("c4_lorem_ipsum")
    if s["c4_curly_bracket"]:
        out.append("c4_curly_bracket")
    if cfg.min_num_sentences > 0 and s["c4_sentences"] < cfg.min_num_sentences:
        out.append("c4_too_few_sentences")
    return out
