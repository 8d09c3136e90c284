"""The filter stage's compiled kernels: the optional package slm-curator-native (Rust, in `native/`).

Two hot spots of the filter pass run there with the Python reference's exact results: the tokenizer
(whitespace split, memo table, common-case shortcuts, then spaCy's affix algorithm over the
per-character patterns `tokenize` derives from the exported rules, handed over by `affix_rules`; a run
that may be a URL still goes to `tokenize._chunk_tokens`) and Gopher's n-gram statistics
(`gopher_repetition.ngram_chars`). Without the package, or with `filter.engine=python`, the Python
reference runs; tests/test_native.py holds the two to the same tokens and numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from slm_curator.errors import ConfigError

API = 2  # the kernels' signatures this module calls; the package reports the ones it has
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


@dataclass(frozen=True)
class Engine:
    """The functions one filter pass calls: compiled or the Python reference, same results."""

    name: str
    words: Callable[[str], list[str]]
    ngram_chars: Callable[[list[str], list[int], list[int]], tuple[dict[int, int], dict[int, int]]]


def engine(choice: str) -> Engine:
    """`auto`: compiled when installed, else Python; `native`: compiled or a ConfigError; `python`."""
    from slm_curator.filters.gopher_repetition import ngram_chars
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
        return Engine("python", words, ngram_chars)
    return Engine("native", _words, module.ngram_chars)
