"""Corrupted copies of a real story continuation, for checking that a judge can tell worse from better.

Each corruption breaks one thing a small model gets wrong: sentence order (plot), an abrupt stop
(coherence), missing words (grammar) and a sentence stuck in a loop (degenerate repetition). A judge
that does not prefer the real continuation over these is not worth asking about models.

Every corruption returns a text different from its input, or raises CannotCorrupt (a ValueError) when
the text is too short for it: two distinct sentences to shuffle, a sentence of two words to cut inside,
two words to drop from, one sentence to repeat. All randomness comes from the `random.Random` passed in,
so a seed gives the same corruptions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# A sentence runs to terminal punctuation (plus closing quotes or brackets) followed by whitespace and
# no lower-case letter (so `"Is it mine?" he asked.` stays one), or to a line break, or to the end.
# Simple rules suffice: an abbreviation taken for a sentence end only moves where a corruption cuts.
_SENTENCE_RE = re.compile(r"\S.*?(?:[.!?…]+[\"'”’)\]]*(?=\s*\Z|\s+(?![a-z]))|(?=[ \t]*\n)|\Z)", re.S)
_WORD_RE = re.compile(r"\S+")
_ENDS_SENTENCE_RE = re.compile(r"[.!?…]+[\"'”’)\]]*\Z")
# How many extra copies repeat_lines adds, inclusive: a loop, not a stutter.
REPEAT_COPIES = (2, 4)


class CannotCorrupt(ValueError):
    """The text is too short for this corruption to change it."""


def shuffle_sentences(text: str, rng: random.Random) -> str:
    """The sentences in another order, each sentence slot keeping its original spacing and line breaks."""
    spans = _sentence_spans(text)
    sentences = [text[s:e] for s, e in spans]
    if len(set(sentences)) < 2:
        raise CannotCorrupt("shuffle_sentences needs two different sentences")
    order = sentences[:]
    rng.shuffle(order)
    if order == sentences:
        # Rotating a sequence with two different items always changes it.
        order = order[1:] + order[:1]
    return _replace_spans(text, spans, order)


def truncate_mid_sentence(text: str, rng: random.Random) -> str:
    """The text cut right after a word that does not end its sentence, so the story stops mid-sentence.

    The cut falls in the second half of the text when it can, so the corruption is an unfinished
    ending rather than a text too short to judge.
    """
    cuts = [
        s + word.end()
        for s, e in _sentence_spans(text)
        for word in list(_WORD_RE.finditer(text[s:e]))[:-1]  # not after the sentence's last word
        if not _ENDS_SENTENCE_RE.search(word.group())  # nor after a quoted question: `"Mine?" he asked`
    ]
    if not cuts:
        raise CannotCorrupt("truncate_mid_sentence needs a sentence of at least two words")
    late = [c for c in cuts if c >= len(text.rstrip()) / 2]
    return text[: rng.choice(late or cuts)]


def drop_words(text: str, rng: random.Random, fraction: float = 0.3) -> str:
    """The text with round(fraction * words) words removed (at least one, and never all of them)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    pieces = re.findall(r"\s*\S+", text)  # each word with the whitespace before it
    if len(pieces) < 2:
        raise CannotCorrupt("drop_words needs at least two words")
    count = min(len(pieces) - 1, max(1, round(fraction * len(pieces))))
    dropped = set(rng.sample(range(len(pieces)), count))
    kept = "".join(p for i, p in enumerate(pieces) if i not in dropped)
    leading = text[: len(text) - len(text.lstrip())]
    trailing = text[len(text.rstrip()) :]
    return leading + kept.lstrip() + trailing


def repeat_lines(text: str, rng: random.Random) -> str:
    """The text with one sentence repeated 2-4 more times right after itself, as a looping model does."""
    spans = _sentence_spans(text)
    if not spans:
        raise CannotCorrupt("repeat_lines needs a sentence")
    start, end = rng.choice(spans)
    copies = rng.randint(*REPEAT_COPIES)
    return text[:end] + f" {text[start:end]}" * copies + text[end:]


CORRUPTIONS = ("shuffle_sentences", "truncate_mid_sentence", "drop_words", "repeat_lines")
_BY_NAME: dict[str, Callable[[str, random.Random], str]] = {
    "shuffle_sentences": shuffle_sentences,
    "truncate_mid_sentence": truncate_mid_sentence,
    "drop_words": drop_words,
    "repeat_lines": repeat_lines,
}


def corrupt(text: str, kind: str, rng: random.Random) -> str:
    """Apply the corruption named `kind` (one of CORRUPTIONS); CannotCorrupt when the text is too short."""
    if kind not in _BY_NAME:
        raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
    return _BY_NAME[kind](text, rng)


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, trailing whitespace excluded."""
    spans = []
    for match in _SENTENCE_RE.finditer(text):
        start, end = match.start(), match.start() + len(match.group().rstrip())
        if end > start:
            spans.append((start, end))
    return spans


def _replace_spans(text: str, spans: list[tuple[int, int]], replacements: list[str]) -> str:
    out, last = [], 0
    for (start, end), new in zip(spans, replacements, strict=True):
        out += [text[last:start], new]
        last = end
    return "".join(out + [text[last:]])
