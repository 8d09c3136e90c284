"""Words and sentences as spaCy's English tokenizer finds them, which the filter heuristics were defined on.

The Gopher, FineWeb and C4 heuristics count words (datatrove splits with spaCy's blank English
pipeline): the alphabetic-word ratio, mean word length and n-gram repetition all move with where text is
split. So `words` is spaCy's algorithm over spaCy's own rules: split at whitespace; keep a run whole when
it is a special case (contractions, abbreviations, emoticons, clock times); otherwise strip prefixes and
suffixes one at a time, re-checking special cases after each; keep what is left whole when it is a URL,
else cut it at infixes; then put back special cases the cuts broke (":-)" from ":", "-", ")"). The
rules (special cases, prefix, suffix and infix patterns, URL pattern) are data exported from spaCy by
scripts/export_spacy_tokenizer.py into spacy_en_tokenizer.json (MIT License, ExplosionAI GmbH); this
module does not import spaCy. tests/test_tokenizer_rules.py holds the result to spaCy on every special
case, every character in each position a rule looks at, and real text of several kinds.

Speed without changing a token: plain words, word + closing mark and numbers take fast paths; a prefix
or suffix is searched only among the alternatives that can begin (end) with the run's first (last)
character, read from the parsed patterns; each whitespace run is split once per process (a bounded memo
table, as spaCy keeps).

One difference is known: spaCy's special-case matcher also considers matches across a single space,
and such a match, though then rejected, can block a match inside the next run ("' ''I" stays "'", "'",
"'", "I" in spaCy); runs here are split independently (1 line in ~130,000 lines of real text).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from array import array
from bisect import bisect_right
from functools import lru_cache
from itertools import compress
from pathlib import Path

try:
    from re import _parser  # Python >= 3.11
except ImportError:  # pragma: no cover
    import sre_parse as _parser

import regex


def _load_rules() -> dict:
    """spaCy's English tokenizer rules (patterns, special cases), exported from spaCy by
    scripts/export_spacy_tokenizer.py."""
    return json.loads(Path(__file__).with_name("spacy_en_tokenizer.json").read_text(encoding="utf-8"))


_RULES = _load_rules()
# Compiled as spaCy compiles them (Python's re, alternatives in spaCy's order): the first alternative
# that matches at the start is the prefix; the leftmost match that ends the run is the suffix; every
# infix match cuts.
PREFIX_RE = re.compile("|".join("^" + p for p in _RULES["prefixes"]))
SUFFIX_RE = re.compile("|".join(s + "$" for s in _RULES["suffixes"]))
INFIX_RE = re.compile("|".join(_RULES["infixes"]))
URL_RE = re.compile(_RULES["url_match"])


def _by_edge(patterns: list[str], last: bool, anchor: str) -> dict[str, re.Pattern] | None:
    """Character -> the alternatives among `patterns` that a match beginning (`last`: ending) with it
    can come from, compiled in their order with `anchor` as spaCy compiles them all: the same first
    (or leftmost) match as the whole alternation, at a fraction of the alternatives tried. None when a
    pattern's edge cannot be read from it (a class by category, a negated class, an edge that may be
    empty): then the caller searches the whole alternation."""
    by_char: dict[str, list[int]] = {}
    for i, pattern in enumerate(patterns):
        parsed = _parser.parse(pattern)
        edge = None if parsed.state.flags & re.IGNORECASE else _edge(list(parsed), last)
        if edge is None:
            return None
        for ch in edge:
            by_char.setdefault(ch, []).append(i)
    compiled: dict[tuple[int, ...], re.Pattern] = {}
    out = {}
    for ch, indices in by_char.items():
        key = tuple(indices)
        if key not in compiled:
            compiled[key] = re.compile("|".join(anchor.format(patterns[i]) for i in key))
        out[ch] = compiled[key]
    return out


def _edge(items: list, last: bool) -> set[str] | None:
    c = _parser
    items = [(op, av) for op, av in items if op not in (c.ASSERT, c.ASSERT_NOT, c.AT)]  # zero-width
    if not items:
        return None
    op, av = items[-1] if last else items[0]
    if op is c.LITERAL:
        return {chr(av)}
    if op is c.IN:
        out: set[str] = set()
        for kind, value in av:
            if kind is c.LITERAL:
                out.add(chr(value))
            elif kind is c.RANGE and value[1] - value[0] < 200_000:
                out.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return out
    if op is c.SUBPATTERN:
        return _edge(list(av[-1]), last)
    if op is c.BRANCH:
        out = set()
        for branch in av[1]:
            edge = _edge(list(branch), last)
            if edge is None:
                return None
            out |= edge
        return out
    if op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
        return _edge(list(av[2]), last)
    return None


def _suffix_reach(patterns: list[str]) -> int | None:
    """The longest a suffix match can be, read from the patterns, when every unbounded one matches only
    dots ("\\.\\.+": a run of dots, which `_suffix` reaches back to); None otherwise (search the whole run)."""
    reach = 0
    for pattern in patterns:
        parsed = _parser.parse(pattern)
        longest = parsed.getwidth()[1]
        if longest < _parser.MAXREPEAT:
            reach = max(reach, longest)
        elif not _only_dots(list(parsed)):
            return None
    return reach


def _only_dots(items: list) -> bool:
    c = _parser
    for op, av in items:
        if op in (c.ASSERT, c.ASSERT_NOT, c.AT):
            continue  # zero-width
        if op is c.LITERAL:
            ok = av == ord(".")
        elif op is c.SUBPATTERN:
            ok = _only_dots(list(av[-1]))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            ok = _only_dots(list(av[2]))
        elif op is c.BRANCH:
            ok = all(_only_dots(list(branch)) for branch in av[1])
        else:
            ok = False
        if not ok:
            return False
    return True


# A suffix search starts this far from the end (a run of dots excepted), not at every position of a
# long run; lookbehinds still see the characters before.
SUFFIX_REACH = _suffix_reach(_RULES["suffixes"])
# Most runs begin and end with characters no prefix or suffix can: those skip the searches, and the
# others try only the alternatives that can begin (end) with their first (last) character.
PREFIX_BY_FIRST = _by_edge(_RULES["prefixes"], last=False, anchor="^{}")
SUFFIX_BY_LAST = _by_edge(_RULES["suffixes"], last=True, anchor="{}$")
INFIX_BY_FIRST = _by_edge(_RULES["infixes"], last=False, anchor="{}")
NUMBER_RE = re.compile(r"[0-9]+(?:[.,:][0-9]+)*")
SPECIAL: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _RULES["special_cases"].items()}
_CLOSERS = frozenset(",;:!?.")  # always a suffix after a word ("." here only after a-z)

SENTENCE_TERMINAL_RE = regex.compile(r"\p{Sentence_Terminal}")


@lru_cache(maxsize=1)
def sentence_terminals() -> frozenset[str]:
    """Unicode's Sentence_Terminal characters (., !, ?, 。, ।, ...): the set sentence rules end on.

    Found by one search over a string of every code point (surrogates included, so none is left out),
    ~50 ms, where matching each code point in turn took ~600 ms of every Python worker's start."""
    every = array("I", range(sys.maxunicode + 1)).tobytes()
    text = every.decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be", "surrogatepass")
    return frozenset(SENTENCE_TERMINAL_RE.findall(text))


# Whitespace runs seen before -> their tokens. Word frequencies are Zipfian, so most runs of a page were
# seen on earlier pages; spaCy keeps the same kind of cache. Cleared when full, so memory stays bounded.
_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_SIZE = 200_000
MEMO_MAX_CHARS = 64  # longer runs (URLs, blobs) are rarely seen twice: never kept, so memory stays small


def words(text: str) -> list[str]:
    """Word and punctuation tokens, whitespace dropped (spaCy's English tokenizer, see the module note)."""
    out: list[str] = []
    cache = _CACHE
    for chunk in text.split():
        tokens = cache.get(chunk)
        if tokens is None:
            tokens = _chunk_tokens(chunk)
            if len(chunk) <= MEMO_MAX_CHARS:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                cache[chunk] = tokens
        out += tokens
    return out


def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free run."""
    special = SPECIAL
    if chunk in special:
        return special[chunk]
    if chunk.isalpha():  # plain words: no affix or infix can apply
        return (chunk,)
    word, mark = chunk[:-1], chunk[-1]
    if (
        mark in _CLOSERS
        and word.isalpha()
        and (mark != "." or "a" <= word[-1] <= "z")
        and word not in special
    ):
        return (word, mark)  # a word and one closing mark, the next most common run
    if NUMBER_RE.fullmatch(chunk):  # 2019, 4,500, 0.3017, 8:46: no rule splits digits so joined
        return (chunk,)
    return affix_tokens(chunk)


def affix_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free run by spaCy's algorithm, no shortcut taken: the affix loop,
    then the special cases it cut put back."""
    out = _split(chunk, SPECIAL)
    if len(out) > 1 and not _MERGE_STARTS.isdisjoint(out[:-1]):
        out = _merge_specials(out)
    return tuple(out)


def _split(chunk: str, special: dict[str, tuple[str, ...]]) -> list[str]:
    """One whitespace-free run: affixes off one by one, then the rest whole or cut at its infixes;
    a `special` case found on the way stays whole (or splits as it says)."""
    prefixes: list[str] = []
    suffixes: list[str] = []
    rest = chunk
    last = -1
    while rest and len(rest) != last:
        if rest in special:
            break
        last = len(rest)
        pre = _prefix(rest)
        pre_len = pre.end() if pre else 0
        if pre_len and rest[pre_len:] in special:
            prefixes.append(rest[:pre_len])
            rest = rest[pre_len:]
            break
        suf = _suffix(rest[pre_len:])
        suf_len = len(suf.group()) if suf else 0
        if suf_len and rest[:-suf_len] in special:
            suffixes.append(rest[-suf_len:])
            rest = rest[:-suf_len]
            break
        if pre_len and suf_len and pre_len + suf_len <= len(rest):
            prefixes.append(rest[:pre_len])
            suffixes.append(rest[-suf_len:])
            rest = rest[pre_len : len(rest) - suf_len]
        elif pre_len:
            prefixes.append(rest[:pre_len])
            rest = rest[pre_len:]
        elif suf_len:
            suffixes.append(rest[-suf_len:])
            rest = rest[:-suf_len]
        if rest in special:
            break
    out = prefixes
    if rest:
        if rest in special:
            out.extend(special[rest])
        elif rest.isalnum() or (("." in rest or "://" in rest) and URL_RE.match(rest)):
            out.append(rest)  # no infix splits letters and digits; a URL has a dot or a scheme
        else:
            start = 0
            for m in _infixes(rest):
                if m.start() == 0:
                    continue
                if m.start() != start:
                    out.append(rest[start : m.start()])
                if m.start() != m.end():
                    out.append(m.group())
                start = m.end()
            if start < len(rest):
                out.append(rest[start:])
    out.extend(reversed(suffixes))
    return out


def _infixes(run: str):
    """spaCy's infix matches (`finditer`: left to right, each search resuming where the last match
    ended), tried only at characters an infix can begin with, each with the alternatives that can."""
    if INFIX_BY_FIRST is None:
        yield from INFIX_RE.finditer(run)
        return
    resume = 0
    by_first = INFIX_BY_FIRST
    for i, ch in enumerate(run):
        if i < resume or ch not in by_first:
            continue
        m = by_first[ch].match(run, i)
        if m is not None:
            yield m
            resume = max(m.end(), i + 1)


def _prefix(run: str):
    """spaCy's prefix match (the first alternative that matches at the start)."""
    if PREFIX_BY_FIRST is None:
        return PREFIX_RE.match(run)
    pattern = PREFIX_BY_FIRST.get(run[0])
    return pattern.match(run) if pattern is not None else None


def _suffix(run: str):
    """spaCy's suffix search (the leftmost match that ends the run), started near the end."""
    if not run:
        return None
    pattern = SUFFIX_RE if SUFFIX_BY_LAST is None else SUFFIX_BY_LAST.get(run[-1])
    if pattern is None:
        return None
    if SUFFIX_REACH is None:
        return pattern.search(run)
    start = len(run) - SUFFIX_REACH
    if start > 0 and run[-1] == ".":
        start = min(start, len(run.rstrip(".")) - 1)  # a run of dots may be one long suffix
    return pattern.search(run, max(start, 0))


def _merge_patterns() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Special cases that the affix rules cut (":-)" -> ":", "-", ")"): their pieces -> the case's tokens.
    spaCy matches these piece sequences after splitting and puts the special case back. Cases whose
    tokens are their pieces ("°c." -> "°", "c", ".") change nothing but still claim their pieces."""
    patterns = {}
    for orth, tokens in SPECIAL.items():
        pieces = tuple(_split(orth, {}))
        if len(pieces) > 1:
            patterns.setdefault(pieces, tokens)
    return patterns


MERGE_PATTERNS = _merge_patterns()
_MERGE_STARTS = frozenset(p[0] for p in MERGE_PATTERNS)  # pieces that can begin one
_MERGE_LENGTHS = sorted({len(p) for p in MERGE_PATTERNS}, reverse=True)


def _merge_specials(tokens: list[str]) -> list[str]:
    """Pieces of one run that spell a special case the affix rules cut (`:` + `-` + `)`, `'` + `bout`)
    become it again, as spaCy's special-case matcher does after splitting: every match is found, the
    longest are looked at first (then the leftmost), and a match whose first or last piece an earlier
    match (taken or not) covers is not taken."""
    n = len(tokens)
    taken: set[int] = set()
    chosen: dict[int, tuple[int, tuple[str, ...]]] = {}  # start -> (size, tokens)
    for size in _MERGE_LENGTHS:
        for i in range(n - size + 1):
            if tokens[i] not in _MERGE_STARTS:
                continue
            case = MERGE_PATTERNS.get(tuple(tokens[i : i + size]))
            if case is None:
                continue
            if i not in taken and i + size - 1 not in taken:
                chosen[i] = (size, case)
            taken.update(range(i, i + size))  # a match passed over still claims its pieces, as in spaCy
    if not chosen:
        return tokens
    out: list[str] = []
    i = 0
    while i < n:
        if i in chosen:
            size, case = chosen[i]
            out.extend(case)
            i += size
        else:
            out.append(tokens[i])
            i += 1
    return out


def is_punct(token: str) -> bool:
    """All characters are Unicode punctuation (spaCy's is_punct)."""
    punct = _PUNCT.get(token)
    if punct is None:
        punct = all(unicodedata.category(c)[0] == "P" for c in token)
        if len(token) <= MEMO_MAX_CHARS and len(_PUNCT) < _CACHE_SIZE:
            _PUNCT[token] = punct
    return punct


_PUNCT: dict[str, bool] = {}


def clear_memo() -> None:
    """Empty this module's memo tables (results never depend on them)."""
    _CACHE.clear()
    _PUNCT.clear()


def count_sentences(tokens: list[str]) -> int:
    """Sentences in a token run, by spaCy's rule-based sentencizer.

    A sentence ends at a sentence-terminal token; the next token that is neither terminal nor
    punctuation starts a new one (so closing quotes and brackets stay with their sentence).
    """
    if not tokens:
        return 0
    terminals = sentence_terminals()
    # Jump from terminal to terminal (found at C speed) instead of visiting every token.
    marks = list(compress(range(len(tokens)), map(terminals.__contains__, tokens)))
    sentences, n, k = 1, len(tokens), 0
    while k < len(marks):
        j = marks[k] + 1
        while j < n and (tokens[j] in terminals or is_punct(tokens[j])):
            j += 1
        if j == n:
            break
        sentences += 1
        k = bisect_right(marks, j, k)
    return sentences
