"""The compiled kernels (native/, package slm-curator-native) against the Python reference they replace.

The native engine is only ever allowed to be faster: the same tokens for every input (every code point
in the positions the shortcuts look at, special cases next to punctuation, random text, real pages,
symbol-heavy text of every kind), the same n-gram statistics, the same signals and decisions. The
reference itself is held to spaCy and datatrove elsewhere (test_tokenizer_rules, test_filters_vs_datatrove).
"""

from __future__ import annotations

import gzip
import json
import pickle
import sys
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import shared_data
from tests.corpora import symbol_heavy
from tests.test_tokenizer_rules import CHARACTER_LINE, CONTEXTS

from slm_curator.config import FilterConfig
from slm_curator.errors import ConfigError
from slm_curator.filters import gopher_repetition
from slm_curator.filters.document import Filters, clear_caches
from slm_curator.text import native, tokenize


@pytest.fixture(scope="module")
def compiled():
    module = native.load()
    assert module is not None, (
        "slm-curator-native is not installed in this venv: scripts/bootstrap.sh builds it when a Rust "
        "toolchain (cargo) works here (scripts/build_native.sh says why not)"
    )
    return module


@pytest.fixture
def native_words(compiled):
    clear_caches()
    return native.engine("native").words


def _tokenizer(compiled, **memo):
    """A compiled tokenizer as the engine builds it (affix rules included), with its own memo limits."""
    args = {"memo_max_chars": tokenize.MEMO_MAX_CHARS, "memo_size": 200_000, **memo}
    return compiled.Tokenizer(
        tokenize.SPECIAL,
        "".join(sorted(tokenize._CLOSERS)),
        tokenize._chunk_tokens,
        affixes=native.affix_rules(),
        **args,
    )


def test_the_whitespace_split_is_pythons_over_every_code_point(compiled):
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert set(compiled.py_whitespace()) == spaces
    text = "".join(f"a{c}b{c}{c}c" for c in sorted(spaces)) + "\u180b\u200b\ufeff"  # the last: not spaces
    assert _tokenizer(compiled).words(text) == tokenize.words(text)


def _code_points(step: int):
    """Every code point below U+3000 (scripts with case, symbols, punctuation), every `step`th above."""
    for code in range(0x21, sys.maxunicode + 1):
        if (code < 0x3000 or code % step == 0) and not 0xD800 <= code < 0xE000:
            yield chr(code)


def test_every_code_point_where_a_shortcut_looks_at_it(compiled):
    """Each character as a word, inside a word, as the closing mark after a word, after a digit and
    before "'s": one long text (the memo table fills and empties on the way with the second)."""
    text = "\n".join(f"{c} ab{c} ab{c}. Ab{c}, x{c}; 1{c} {c}'s {c}{c}" for c in _code_points(29))
    for tokenizer in (_tokenizer(compiled), _tokenizer(compiled, memo_size=1000, memo_max_chars=3)):
        assert tokenizer.words(text) == tokenize.words(text)


def test_every_character_where_a_rule_looks_at_it(native_words):
    for c in _code_points(97):
        line = CHARACTER_LINE.format(c=c)
        assert native_words(line) == tokenize.words(line), f"U+{ord(c):04X}"


def test_special_cases_alone_and_next_to_punctuation(native_words):
    for orth in tokenize.SPECIAL:
        for context in ["{}", *CONTEXTS]:
            text = context.format(orth)
            assert native_words(text) == tokenize.words(text), text


PIECES = ["word", "Word", "a", "I", "U.S.", "e.g.", "don't", "5", "4,500", "8:46", "0.3", "1.", ",", ".", "..",
          "...", "…", "!", "?", ";", ":", "'", '"', "(", ")", "[", "-", "--", "’s", "'s", "$", "€", "%", "km",
          "°C", "#", "@", "/", "http://a.b/c?d=1", "www.x.org", "café", "naïve", "Straße", "东京", "مرحبا", "²",
          "🥲", "\u0301", "ǅ", "ª", ":-)", ":)", "<3", "\u00a0", "\u2009", "\u3000", "\x1c", "\x85", " ", "\t",
          "\n", "\r\n", "\u2028", "a" * 70, "b" * 70 + ".", "ab" * 40 + ","]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.text(max_size=30))
def test_random_text_splits_as_the_reference_does(compiled, pieces, noise):
    text = "".join(pieces) + noise + " ".join(pieces)
    for tokenizer in (_tokenizer(compiled), _tokenizer(compiled, memo_size=2, memo_max_chars=1)):
        assert tokenizer.words(text) == tokenize.words(text)


def _kind_documents() -> list[str]:
    return [doc for docs in symbol_heavy.documents(per_kind=12).values() for doc in docs]


def _web_documents(limit: int) -> list[str]:
    docs = []
    for path in sorted(shared_data("web").glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            docs += [
                t for t in (json.loads(line).get("text") or "" for line in islice(fh, limit)) if t.strip()
            ]
    return docs


def test_real_and_symbol_heavy_text_splits_as_the_reference_does(native_words):
    lines = [line for doc in _kind_documents() + _web_documents(60) for line in doc.splitlines()]
    assert len(lines) > 2_000
    assert [native_words(line) for line in lines] == [tokenize.words(line) for line in lines]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "bb", "é", "东京", "", "a b"]), max_size=60),
    st.lists(st.integers(1, 12), max_size=4),
    st.lists(st.integers(1, 12), max_size=7),
)
def test_ngram_statistics_equal_the_reference(compiled, tokens, top, dup):
    assert compiled.ngram_chars(tokens, top, dup) == gopher_repetition.ngram_chars(tokens, top, dup)


def test_ngram_statistics_on_real_documents(compiled):
    top, dup = [1, 2, 3, 4], [5, 6, 7, 8, 9, 10]
    for doc in _kind_documents() + _web_documents(40):
        tokens = [t for line in doc.splitlines() for t in tokenize.words(line)]
        repeated = tokens * 2 + tokens[: len(tokens) // 3]  # long exact repeats too
        for sample in (tokens, repeated):
            assert compiled.ngram_chars(sample, top, dup) == gopher_repetition.ngram_chars(sample, top, dup)


def test_the_filter_pass_gives_the_same_signals_and_decisions_with_either_engine(compiled):
    docs = _kind_documents() + _web_documents(60) + ["", " \n ", "word " * 60, "lone \ud800 surrogate " * 20]
    cfg_python, cfg_native = FilterConfig(), FilterConfig()
    cfg_python.engine, cfg_native.engine = "python", "native"
    python, fast = Filters(cfg_python), Filters(cfg_native)
    assert (python.engine.name, fast.engine.name) == ("python", "native")
    assert [fast.analyze(d) for d in docs] == [python.analyze(d) for d in docs]


def test_filters_pickle_and_rebuild_their_engine_in_the_worker(compiled):
    filters = pickle.loads(pickle.dumps(Filters(FilterConfig())))  # the UDF's closure goes to Python workers
    assert filters.engine.name == "native"
    cfg = FilterConfig()
    cfg.engine = "python"
    reference = Filters(cfg)
    for doc in _kind_documents()[::10]:
        assert filters.analyze(doc) == reference.analyze(doc)


def test_engine_choice_names_the_key_and_the_allowed_values(monkeypatch):
    with pytest.raises(ConfigError, match=r"filter\.engine: 'fast' .* allowed values: auto, native, python"):
        native.engine("fast")
    monkeypatch.setattr(native, "load", lambda: None)  # as where the package is not installed
    with pytest.raises(ConfigError, match=r"filter\.engine: native needs the package slm-curator-native"):
        native.engine("native")
    assert native.engine("auto").name == "python"
    assert native.engine("python").name == "python"


def test_runs_no_shortcut_settles_are_split_by_the_compiled_affix_rules(compiled):
    """The parity tests above would pass with every run handed back to Python: here the reference is
    asked only about runs that may be URLs (a "." or "://" left after the affixes come off)."""
    assert native.affix_rules() is not None
    assert native._tokenizer().compile_all() == []  # every pattern compiles in the Rust engine
    asked = []

    def reference(run):
        asked.append(run)
        return tokenize._chunk_tokens(run)

    tokenizer = compiled.Tokenizer(
        tokenize.SPECIAL,
        "".join(sorted(tokenize._CLOSERS)),
        reference,
        tokenize.MEMO_MAX_CHARS,
        200_000,
        native.affix_rules(),
    )
    text = "(word) “quoted” don’t 10km $5 US$5 a-b 3+4 x/y 'bout :-))) ''Hi 5°C. naïve, «mot» 東京。 #tag @me ..."
    assert tokenizer.words(text) == tokenize.words(text)
    assert asked == []
    assert tokenizer.words("see example.com, e.g.x") == tokenize.words("see example.com, e.g.x")
    assert asked == ["example.com,", "e.g.x"]


def test_threads_each_get_their_own_tokenizer(compiled):
    """The compiled tokenizer calls back into Python, where another thread may run: each thread has its
    own, so a notebook analysing pages from a thread pool gets the reference's tokens, no error."""
    from concurrent.futures import ThreadPoolExecutor

    docs = _kind_documents()
    lines = [line for doc in docs for line in doc.splitlines()]
    words = native.engine("native").words
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(words, lines * 3))
    assert got == [tokenize.words(line) for line in lines] * 3
