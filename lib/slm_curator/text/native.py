"""The filter stage's compiled kernels: the optional package slm-curator-native (Rust, in `native/`).

The filter pass's hot spots run there with the Python reference's exact results: the tokenizer
(whitespace split, memo table, common-case shortcuts, then spaCy's affix algorithm over the
per-character patterns `tokenize` derives from the exported rules, handed over by `affix_rules`; a run
that may be a URL still goes to `tokenize._chunk_tokens`), Gopher's n-gram statistics
(`gopher_repetition.ngram_chars`), repeated lines and paragraphs (`line_counts`), word shapes and stop
words (`gopher_quality.token_counts`), bad-word matches (`bad_words.count_tokens`), C4's line
cleaning (`c4.clean`, citation markers still removed by `c4.cite`), and fastText's
predict for language ID (the same LID-176 file, read and computed in fastText's order: the labels and
probabilities of `language.fasttext_top` bit for bit). Character classes and case are asked of
Python, so Unicode tables are the running Python's. Without the package, or with
`filter.engine=python`, the Python reference runs; tests/test_native.py holds the two to the same
tokens and numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from slm_curator.errors import ConfigError

API = 3  # the kernels' signatures this module calls; the package reports the ones it has
ENGINES = ("auto", "native", "python")


@lru_cache(maxsize=1)
def load() -> Any | None:
    """The compiled module, or None when it is not installed or was built for other signatures."""
    try:
        import slm_curator_native
    except ImportError:
        return None
    return slm_curator_native if getattr(slm_curator_native, "API", None) == API else None


_LOCAL = threading.local()


def _tokenizer():
    """This thread's compiled tokenizer: it holds a memo table it writes to, and it calls back into
    Python (rules, character classes), where another thread could otherwise enter it."""
    tokenizer = getattr(_LOCAL, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _LOCAL.tokenizer = _new_tokenizer()
    return tokenizer


def _words(text: str) -> list[str]:
    return _tokenizer().words(text)


def _new_tokenizer():
    from slm_curator.text import tokenize

    module = load()
    return module.Tokenizer(
        tokenize.SPECIAL,
        "".join(sorted(tokenize._CLOSERS)),
        tokenize._chunk_tokens,
        tokenize.MEMO_MAX_CHARS,
        tokenize._CACHE_SIZE,
        affix_rules(),
    )


def affix_rules() -> dict | None:
    """The affix rules as the compiled tokenizer takes them: each character's prefix, suffix and infix
    alternatives as pattern text (tokenize's own per-character split of spaCy's patterns), how far
    from the end a suffix search starts, and the special cases to put back. None when the patterns
    could not be split by character: then the reference handles every run no shortcut settles."""
    from slm_curator.text import tokenize

    tables = (tokenize.PREFIX_BY_FIRST, tokenize.SUFFIX_BY_LAST, tokenize.INFIX_BY_FIRST)
    if any(t is None for t in tables):
        return None
    prefix, suffix, infix = ({c: p.pattern for c, p in t.items()} for t in tables)
    return {
        "prefix": prefix,
        "suffix": suffix,
        "infix": infix,
        "suffix_reach": tokenize.SUFFIX_REACH,
        "merge": tokenize.MERGE_PATTERNS,
    }


def clear_memo() -> None:
    """Empty this thread's compiled tokenizer's memo table, when one was built (results never depend
    on it)."""
    tokenizer = getattr(_LOCAL, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.clear()


@lru_cache(maxsize=1)
def _lid():
    """The compiled reader of the LID-176 file, or None when it refuses the file (then fastText's own
    binding runs it; the reader takes LID-176's format and refuses what it does not read)."""
    from slm_curator.filters.language import lid_model_path

    try:
        return load().FastText(lid_model_path())
    except ValueError:
        return None


def _fasttext_top(text: str) -> tuple[str, float] | None:
    model = _lid()
    if model is None:
        from slm_curator.filters.language import fasttext_top

        return fasttext_top(text)
    return model.predict_words(text)


@lru_cache(maxsize=1)
def _word_shapes():
    from slm_curator.filters.gopher_quality import PUNCTUATION

    return load().WordShapes(PUNCTUATION)


def _gopher_counts(tokens: list[str], stop_words: list[str]) -> tuple[int, int, int, int, int]:
    return _word_shapes().counts(tokens, stop_words)


@lru_cache(maxsize=64)
def _bad_word_list(language: str):
    from slm_curator.filters import bad_words

    words = bad_words.load(language)
    return load().BadWords(sorted(words.single), [list(p) for ps in words.phrases.values() for p in ps])


def _bad_words(tokens: list[str], language: str) -> int:
    return _bad_word_list(language).count(tokens)


@lru_cache(maxsize=8)
def _c4_lines(settings: tuple):
    from slm_curator.filters import c4
    from slm_curator.text.tokenize import sentence_terminals

    terminals = "".join(sorted(sentence_terminals()))
    policy = (list(c4.POLICY_KEYS), list(c4.POLICY_PHRASES))
    return load().C4Lines(terminals, "".join(c4.END_PUNCTUATION), *policy, *settings)


def _c4_clean(lines: list[str], line_tokens: list[list[str]], cfg) -> tuple[str, dict[str, float]]:
    from slm_curator.filters import c4

    settings = (
        cfg.filter_no_terminal_punct,
        cfg.min_words_per_line,
        cfg.max_word_length,
        cfg.filter_lorem_ipsum,
        cfg.filter_javascript,
        cfg.filter_curly_bracket,
        cfg.filter_policy,
        cfg.remove_citations,
    )
    text, counts = _c4_lines(settings).clean(lines, line_tokens, c4.cite)
    return text, c4.signals_of(counts)


@dataclass(frozen=True)
class Engine:
    """The functions one filter pass calls: compiled or the Python reference, same results."""

    name: str
    words: Callable[[str], list[str]]
    ngram_chars: Callable[[list[str], list[int], list[int]], tuple[dict[int, int], dict[int, int]]]
    fasttext_top: Callable[[str], tuple[str, float] | None]
    gopher_counts: Callable[[list[str], list[str]], tuple[int, int, int, int, int]]
    # (tokens, language) -> matches of that language's token list (`bad_words.count_listed`).
    bad_words: Callable[[list[str], str], int]
    line_repetition: Callable[[str], tuple[int, int, int, int, int, int]]
    c4_clean: Callable[[list[str], list[list[str]], Any], tuple[str, dict[str, float]]]


def engine(choice: str) -> Engine:
    """`auto`: compiled when installed, else Python; `native`: compiled or a ConfigError; `python`."""
    from slm_curator.filters.bad_words import count_listed
    from slm_curator.filters.c4 import clean
    from slm_curator.filters.gopher_quality import token_counts
    from slm_curator.filters.gopher_repetition import line_counts, ngram_chars
    from slm_curator.filters.language import fasttext_top
    from slm_curator.text.tokenize import words

    if choice not in ENGINES:
        raise ConfigError(f"filter.engine: {choice!r} is not an engine; allowed values: {', '.join(ENGINES)}")
    module = load() if choice != "python" else None
    if module is None:
        if choice == "native":
            raise ConfigError(
                "filter.engine: native needs the package slm-curator-native (scripts/build_native.sh builds "
                "its wheel; it needs a Rust toolchain), which this Python cannot import; "
                f"allowed values: {', '.join(ENGINES)} (auto and python run the Python engine, same results)"
            )
        return Engine(
            "python", words, ngram_chars, fasttext_top, token_counts, count_listed, line_counts, clean
        )
    return Engine(
        "native",
        _words,
        module.ngram_chars,
        _fasttext_top,
        _gopher_counts,
        _bad_words,
        module.line_repetition,
        _c4_clean,
    )
