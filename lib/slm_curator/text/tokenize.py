"""Words and sentences as spaCy's English tokenizer finds them, which the filter heuristics were defined on.

The Gopher, FineWeb and C4 heuristics count words (datatrove splits with spaCy's blank English
pipeline): the alphabetic-word ratio, mean word length and n-gram repetition all move with where text is
split. So `words` follows spaCy's algorithm: split at whitespace; keep a run whole when it is a special
case (contractions, abbreviations, emoticons, clock times) or a URL; otherwise strip prefixes (opening
punctuation, quotes, currency, symbols) and suffixes (closing punctuation, quotes, "'s", units after
numbers, a final period after a lower-case letter or digit) one at a time, re-checking special cases
after each, and split what is left only at infixes (hyphens between letters, operators between digits,
ellipses, symbols, a period between a lower- and an upper-case letter, a comma between letters, : < > =
/ before a letter). A run between spaces such as `04/26/19(Fri)22:36:49` stays one token, as in spaCy.
The rules are written here from spaCy's documented behaviour and checked against it on every kind of
text in tests/corpora (tests/test_filters_vs_datatrove.py); plain words and numbers take a fast path,
and each whitespace run is split once per process (a bounded memo table, as spaCy keeps).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from bisect import bisect_right
from functools import lru_cache
from itertools import compress

import regex

_PUNCT = [
    "…",
    "……",
    ",",
    ":",
    ";",
    "!",
    "?",
    "¿",
    "؟",
    "¡",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "_",
    "#",
    "*",
    "&",
    "。",
    "？",
    "！",
    "，",
    "、",
    "；",
    "：",
    "～",
    "·",
    "।",
    "،",
    "۔",
    "؛",
    "٪",
]
_QUOTES = [
    "''",
    "'",
    '"',
    "”",
    "“",
    "`",
    "‘",
    "´",
    "’",
    "‚",
    ",",
    "„",
    "»",
    "«",
    "「",
    "」",
    "『",
    "』",
    "（",
    "）",
    "〔",
    "〕",
    "【",
    "】",
    "《",
    "》",
    "〈",
    "〉",
    "〈",
    "〉",
    "⟦",
    "⟧",
]
_UNITS = [
    "km",
    "km²",
    "km³",
    "m",
    "m²",
    "m³",
    "dm",
    "dm²",
    "dm³",
    "cm",
    "cm²",
    "cm³",
    "mm",
    "mm²",
    "mm³",
    "ha",
    "µm",
    "nm",
    "yd",
    "in",
    "ft",
    "kg",
    "g",
    "mg",
    "µg",
    "t",
    "lb",
    "oz",
    "m/s",
    "km/h",
    "kmh",
    "mph",
    "hPa",
    "Pa",
    "mbar",
    "mb",
    "MB",
    "kb",
    "KB",
    "gb",
    "GB",
    "tb",
    "TB",
    "T",
    "G",
    "M",
    "K",
    "%",
    "км",
    "км²",
    "км³",
    "м",
    "м²",
    "м³",
    "дм",
    "дм²",
    "дм³",
    "см",
    "см²",
    "см³",
    "мм",
    "мм²",
    "мм³",
    "нм",
    "кг",
    "г",
    "мг",
    "м/с",
    "км/ч",
    "кПа",
    "Па",
    "мбар",
    "Кб",
    "КБ",
    "кб",
    "Мб",
    "МБ",
    "мб",
    "Гб",
    "ГБ",
    "гб",
    "Тб",
    "ТБ",
    "тб",
]
_CURRENCY = r"US\$|C\$|A\$|\p{Sc}"


def _alt(items) -> str:
    return "|".join(regex.escape(i) for i in sorted(set(items), key=len, reverse=True))


_P, _Q = _alt(_PUNCT), _alt(_QUOTES)
_ICONS = r"[\p{So}]"
PREFIX_RE = regex.compile(rf"^(?:§|%|=|—|–|\+(?![0-9])|\.\.+|…|{_P}|{_Q}|{_CURRENCY}|{_ICONS})")
# Matched backwards from the end of the run (REVERSE): a forward search would try every start position.
# "……" before "…" so that the reverse match is the longest, as the forward search's leftmost one is.
SUFFIX_RE = regex.compile(
    rf"(?:\.\.+|……|…|{_P}|{_Q}|{_ICONS}|['’][sS]|—|–|(?<=[0-9])\+|(?<=°[FfCcKk])\."
    rf"|(?<=[0-9])(?:{_CURRENCY})|(?<=[0-9])(?:{_alt(_UNITS)})"
    rf"|(?<=[0-9\p{{Ll}}\p{{Lo}}\p{{M}}%²\-\+]|{_P}|{_Q})\.|(?<=[\p{{Lu}}\p{{Lo}}][\p{{Lu}}\p{{Lo}}])\.)$",
    regex.REVERSE,
)
INFIX_RE = regex.compile(
    rf"\.\.+|…|{_ICONS}|(?<=[0-9])[+\-*^](?=[0-9-])|(?<=[\p{{Ll}}\p{{Lo}}]|{_Q})\.(?=[\p{{Lu}}\p{{Lo}}]|{_Q})"
    r"|(?<=\p{L}),(?=\p{L})|(?<=[\p{L}0-9])(?:---|--|——|-|–|—|~)(?=\p{L})|(?<=[\p{L}0-9])[:<>=/](?=\p{L})"
)
NUMBER_RE = re.compile(r"[0-9]+(?:[.,:][0-9]+)*")
# A URL or e-mail address: optional scheme and user, dot-separated host labels, a letter TLD.
URL_RE = regex.compile(
    r"^(?:[\w+.-]{2,}://)?(?:\S+(?::\S*)?@)?(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62}\.)+"
    r"[a-z\u00a1-\uffff]{2,63}\.?(?::\d{2,5})?(?:[/?#]\S*)?$"
    r"|^(?:https?|ftp)://\S+$"
)

_EMOTICONS = [
    ":)",
    ":-)",
    ":))",
    ":-))",
    ":)))",
    "=)",
    "=]",
    ":]",
    ":-]",
    "(:",
    "(-:",
    "(=",
    "[:",
    ":(",
    ":-(",
    ":((",
    ":-((",
    "):",
    ")-:",
    "=(",
    ":/",
    ":-/",
    ":\\",
    ":|",
    ":-|",
    ":P",
    ":p",
    ":-P",
    ":-p",
    ";P",
    ";p",
    ":D",
    ":-D",
    "=D",
    "xD",
    "XD",
    "xDD",
    "XDD",
    ";)",
    ";-)",
    ";D",
    ":*",
    ":-*",
    ":o",
    ":O",
    ":-o",
    ":-O",
    ":x",
    ":X",
    "8)",
    "8-)",
    "B)",
    "<3",
    "</3",
    "<33",
    ":')",
    ":'(",
    "^_^",
    "^__^",
    "^^",
    "-_-",
    "o_O",
    "O_o",
    "o_o",
    "O_O",
    "o.O",
    "O.o",
    "o.o",
    "O.O",
    "0_o",
    "0_0",
    "v.v",
    "V_V",
    "._.",
    ">:(",
    ">:o",
    "(¬_¬)",
    "(╯°□°）╯︵┻━┻",
    "¯\\(ツ)/¯",
]
_ABBREVIATIONS = [
    "Mr.",
    "Mrs.",
    "Ms.",
    "Dr.",
    "St.",
    "Jr.",
    "Mt.",
    "Co.",
    "Corp.",
    "Inc.",
    "Ltd.",
    "Bros.",
    "vs.",
    "v.",
    "Prof.",
    "Gen.",
    "Gov.",
    "Sen.",
    "Rep.",
    "Rev.",
    "Messrs.",
    "Jan.",
    "Feb.",
    "Mar.",
    "Apr.",
    "Jun.",
    "Jul.",
    "Aug.",
    "Sep.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
    "Ala.",
    "Ariz.",
    "Ark.",
    "Calif.",
    "Colo.",
    "Conn.",
    "Del.",
    "Fla.",
    "Ga.",
    "Ill.",
    "Ind.",
    "Kan.",
    "Kans.",
    "Ky.",
    "La.",
    "Mass.",
    "Md.",
    "Mich.",
    "Minn.",
    "Miss.",
    "Mo.",
    "Mont.",
    "Neb.",
    "Nebr.",
    "Nev.",
    "Okla.",
    "Ore.",
    "Pa.",
    "Tenn.",
    "Va.",
    "Wash.",
    "Wis.",
    "N.C.",
    "N.D.",
    "N.H.",
    "N.J.",
    "N.M.",
    "N.Y.",
    "S.C.",
    "a.m.",
    "p.m.",
    "e.g.",
    "i.e.",
    "Ph.D.",
    "U.S.",
    "U.K.",
    "U.S.A.",
    "o'clock",
    "ma'am",
    "'em",
    "'cause",
    "ol'",
    "'ll",
    "'re",
    "'d",
    "'s",
    "and/or",
    "''",
]
_NOT = [
    "do",
    "does",
    "did",
    "ca",
    "could",
    "wo",
    "would",
    "should",
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "ai",
    "must",
    "need",
    "might",
]
_PRONOUNS = ["i", "you", "he", "she", "it", "we", "they", "who", "what", "there", "that", "here", "where"]
# With an apostrophe: these pronouns give up their clitic; without one, only these spellings are split.
_CLITIC_HOSTS = {"ll": _PRONOUNS, "d": _PRONOUNS, "ve": _PRONOUNS, "re": _PRONOUNS, "m": ["i"]}
_BARE = [
    "im",
    "ive",
    "youre",
    "youve",
    "youll",
    "youd",
    "theyre",
    "theyve",
    "theyll",
    "theyd",
    "weve",
    "itll",
    "thats",
    "whats",
    "hes",
    "shes",
    "id",
]


def _cases(pairs, upper: bool = True):
    """A split word in lower case, Title case and (`upper`) UPPER case, its pieces cased alike."""
    out = {}
    for orth, parts in pairs:
        out[orth] = parts
        out[orth[:1].upper() + orth[1:]] = [parts[0][:1].upper() + parts[0][1:], *parts[1:]]
        if upper:
            out[orth.upper()] = [p.upper() for p in parts]
    return out


def _special_cases() -> dict[str, list[str]]:
    pairs = [(verb + nt, [verb, nt]) for verb in _NOT for nt in ("n't", "n’t", "nt")]
    pairs += [(h + m + c, [h, m + c]) for c, hosts in _CLITIC_HOSTS.items() for h in hosts for m in "'’"]
    pairs += [
        ("cannot", ["can", "not"]),
        ("gonna", ["gon", "na"]),
        ("gotta", ["got", "ta"]),
        ("y'all", ["y'", "all"]),
    ]
    special = _cases(pairs)
    cut = {w: len(w) - (2 if w.endswith(("re", "ve", "ll")) else 1) for w in _BARE}  # "youre" -> you + re
    special.update(_cases([(w, [w[: cut[w]], w[cut[w] :]]) for w in _BARE], upper=False))  # "ID" stays whole
    for hour in range(1, 13):
        for period in ("am", "pm", "a.m.", "p.m."):
            special[f"{hour}{period}"] = [str(hour), period]
    for orth in [*_EMOTICONS, *_ABBREVIATIONS]:
        special[orth] = [orth]
    for letter in "abcdefghijklmnopqrstuvwxyzäöü":
        special[letter + "."] = [letter + "."]
        special[letter.upper() + "."] = [letter.upper() + "."]
    return special


SPECIAL = _special_cases()
_CLOSERS = frozenset(",;:!?.")  # always a suffix after a word ("." only after a lower-case letter)
MERGEABLE = frozenset(k for k, v in SPECIAL.items() if v == [k] and not k.isalnum())
_MERGE_STARTS = frozenset(m[:i] for m in MERGEABLE for i in range(1, len(m)))  # pieces that can begin one

SENTENCE_TERMINAL_RE = regex.compile(r"\p{Sentence_Terminal}")


@lru_cache(maxsize=1)
def sentence_terminals() -> frozenset[str]:
    """Unicode's Sentence_Terminal characters (., !, ?, 。, ।, ...): the set sentence rules end on."""
    return frozenset(chr(c) for c in range(sys.maxunicode + 1) if SENTENCE_TERMINAL_RE.match(chr(c)))


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
        return tuple(special[chunk])
    if chunk.isalpha():  # plain words: no affix or infix can apply
        return (chunk,)
    word, mark = chunk[:-1], chunk[-1]
    if mark in _CLOSERS and word.isalpha() and (mark != "." or word[-1].islower()) and word not in special:
        return (word, mark)  # a word and one closing mark, the next most common run
    if NUMBER_RE.fullmatch(chunk):  # 2019, 4,500, 0.3017, 8:46: no rule splits digits so joined
        return (chunk,)
    return tuple(_split(chunk))


def _split(chunk: str) -> list[str]:
    """One whitespace-free run: affixes off one by one, then the rest whole or cut at its infixes."""
    special = SPECIAL
    prefixes: list[str] = []
    suffixes: list[str] = []
    rest = chunk
    last = -1
    while rest and len(rest) != last:
        if rest in special:
            break
        last = len(rest)
        pre = PREFIX_RE.search(rest)
        pre_len = pre.end() if pre else 0
        if pre_len and rest[pre_len:] in special:
            prefixes.append(rest[:pre_len])
            rest = rest[pre_len:]
            break
        suf = SUFFIX_RE.search(rest[pre_len:])
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
            for m in INFIX_RE.finditer(rest):
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
    if len(out) > 1 and not _MERGE_STARTS.isdisjoint(out[:-1]):
        return _merge_specials(out)
    return out


def _merge_specials(tokens: list[str]) -> list[str]:
    """Adjacent pieces of one run that spell a special case with punctuation in it (`)` + `:`, `'` +
    `em`, `g` + `.`) become it, as spaCy's special-case matcher does after splitting."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for n in (3, 2):
            joined = "".join(tokens[i : i + n])
            if i + n <= len(tokens) and joined in MERGEABLE:
                out.append(joined)
                i += n
                break
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
