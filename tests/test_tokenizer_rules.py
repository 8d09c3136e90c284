"""The word tokenizer against spaCy's English tokenizer, which the filter heuristics were defined on.

`slm_curator.text.tokenize` applies spaCy's algorithm to spaCy's rules, exported to
lib/slm_curator/text/spacy_en_tokenizer.json. These tests hold it to spaCy itself: the exported rules
equal the installed spaCy's, every special case splits as spaCy splits it alone and next to
punctuation, every character in each position a rule looks at (before a period, after a letter,
as a prefix or suffix, between letters or digits) splits as in spaCy, and so does real text of kinds
the web sample lacks (forum-style answers, novels, plays).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import unicodedata
from itertools import islice
from pathlib import Path

import pytest
from tests.conftest import shared_data

from slm_curator.text import tokenize
from slm_curator.text.tokenize import words

ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = ["({})", "{}.", "{},", '"{}"', "{}!", "{}?", "'{}'", "“{}”", "[{}]", "{}:", "{}...", "*{}*", "{}’s",
            "x{}", "{}x", "{}-", "-{}", "{}/", "1{}", "{}1"]  # fmt: skip
# One line per character: the character before a period after a lower- and an upper-case letter, as a
# prefix, as a suffix, between letters, between digits, after a digit (currency, units), before "'s",
# inside a host name.
CHARACTER_LINE = "x{c}. A{c}. {c}abc abc{c} a{c}B 1{c}2 5{c} {c}'s ab.c{c} www.a{c}.com a.{c}b"


@pytest.fixture(scope="module")
def spacy_words():
    import spacy  # a dev dependency, as datatrove is: the reference these tests hold the tokenizer to

    nlp = spacy.blank("en")
    return lambda text: [t.text for t in nlp(text) if not t.is_space]


def test_exported_rules_equal_the_installed_spacy():
    """A spaCy release that changes its rules fails here: re-run scripts/export_spacy_tokenizer.py."""
    spec = importlib.util.spec_from_file_location("export", ROOT / "scripts" / "export_spacy_tokenizer.py")
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    shipped = json.loads((ROOT / "lib/slm_curator/text/spacy_en_tokenizer.json").read_text(encoding="utf-8"))
    assert shipped == export.rules()


def test_every_special_case_alone_and_next_to_punctuation(spacy_words):
    differ = []
    for orth in tokenize.SPECIAL:
        for context in ["{}", *CONTEXTS]:
            text = context.format(orth)
            if words(text) != spacy_words(text):
                differ.append(text)
    assert not differ, differ[:20]


def test_every_character_where_a_rule_looks_at_it(spacy_words):
    """Every assigned character below U+30000 (of the caseless letters, category Lo, every 40th),
    in each position a prefix, suffix, infix or URL rule examines."""
    differ = []
    for code in range(0x21, 0x30000):
        c = chr(code)
        category = unicodedata.category(c)
        if category in ("Cn", "Cs", "Co", "Cc", "Zs", "Zl", "Zp") or c.isspace():
            continue
        if category == "Lo" and code % 40:
            continue
        line = CHARACTER_LINE.format(c=c)
        if words(line) != spacy_words(line):
            differ.append(f"U+{code:04X}")
    assert not differ, differ[:20]


def test_real_text_of_other_kinds_splits_as_spacy_does(spacy_words):
    """Explanations written for people (ELI5 answers, with their contractions, emoticons and lists),
    educational web pages, a novel and a play, line by line."""
    texts = []
    for name, limit in [("eli5_answers.jsonl.gz", 400), ("fineweb_edu_llama3_scored_3k.jsonl.gz", 150)]:
        with gzip.open(shared_data("quality", name), "rt", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in islice(fh, limit)]
    for book in ["carroll-alice.txt", "shakespeare-hamlet.txt"]:
        texts.append(shared_data("prose", "gutenberg", book).read_text(encoding="utf-8", errors="replace"))
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    differ = [line for line in lines if words(line) != spacy_words(line)]
    assert len(lines) > 5_000 and not differ, differ[:5]


def test_the_suffix_search_near_the_end_equals_the_full_search():
    """`_suffix` starts searching a few characters from the end (a run of dots excepted)."""
    rng = random.Random(5)
    pieces = [
        "word",
        "km",
        "5",
        ".",
        "..",
        "…",
        "’s",
        "'",
        ")",
        "US$",
        "$",
        "€",
        "²",
        "°C",
        "A",
        "ª",
        "🥲",
        "|",
        "%",
    ]
    runs = {"".join(rng.choices(pieces, k=rng.randint(1, 9))) for _ in range(20_000)}
    runs |= {"a" * n + "." * k for n in range(0, 12) for k in range(0, 12)}
    for run in runs:
        full = tokenize.SUFFIX_RE.search(run)
        near = tokenize._suffix(run)
        assert (full and full.span()) == (near and near.span()), run


def test_overlapping_special_cases_resolve_as_in_spacy(spacy_words):
    """Runs of quotes and brackets hold many overlapping special cases ("''", ":)", ":-)))"): which are
    put back follows spaCy's matcher (longest first, then leftmost; a match passed over still claims
    its pieces)."""
    differ = []
    for mark in ["'", "’", ")", "("]:
        for count in range(1, 9):
            for head in ["", "x", ":", ":-", "("]:
                for tail in ["", "a", "Galactica", ":", ":-", "."]:
                    text = head + mark * count + tail
                    if words(text) != spacy_words(text):
                        differ.append(text)
    assert not differ, differ[:20]


def test_infixes_tried_where_they_can_begin_equal_the_full_scan():
    """`_infixes` tries only characters an infix can begin with, each with the alternatives that can."""
    rng = random.Random(6)
    pieces = [
        "a",
        "B",
        "1",
        "-",
        "--",
        ".",
        "…",
        "..",
        "🥲",
        "+",
        "*",
        "^",
        ",",
        ":",
        "/",
        "<",
        "=",
        "~",
        "—",
        '"',
        "’",
        "ü",
    ]
    for _ in range(20_000):
        run = "".join(rng.choices(pieces, k=rng.randint(1, 10)))
        assert [m.span() for m in tokenize._infixes(run)] == [
            m.span() for m in tokenize.INFIX_RE.finditer(run)
        ], run


def test_suffix_reach_is_read_from_the_patterns():
    """How far back `_suffix` starts comes from the rules: the longest bounded pattern, and a run of
    dots for an unbounded one; any other unbounded pattern means the whole run is searched."""
    assert tokenize._suffix_reach(["ab", "(?<=[0-9])(?:km|mph)", r"\.\.+"]) == 3
    assert tokenize._suffix_reach(["ab", "[a-z]+"]) is None
    assert tokenize.SUFFIX_REACH is not None
