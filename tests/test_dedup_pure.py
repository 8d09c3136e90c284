"""Dedup's pure parts: normalisation, shingles, MinHash signatures and band keys, union-find."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slm_curator.config import DedupConfig
from slm_curator.dedup.minhash import MinHasher, estimated_jaccard, jaccard
from slm_curator.dedup.signatures import exact_hash, signature_rows
from slm_curator.dedup.union_find import components
from slm_curator.text.normalize import Normalization, normalize, normalize_batch, words

VOCAB = [f"w{i}" for i in range(5000)]


def _doc(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(VOCAB) for _ in range(n)]


def test_normalize_erases_case_space_punctuation_and_compatibility_forms():
    a = normalize("Hello,  World!!\n\tＦｕｌｌ — “width”")
    b = normalize("hello world full width")
    assert a == b == "hello world full width"
    assert normalize(None) == normalize("") == normalize(" ... !!! ") == ""
    assert (
        normalize("Call 555-0100 on 2024-01-02", Normalization(digits=True)) == "call 000 0000 on 0000 00 00"
    )
    assert normalize("A  b", Normalization(whitespace=False, lowercase=False)) == "A  b"
    # Scripts without case or spaces between words survive (only punctuation goes); Han and kana are
    # one word each, so spacing inside Chinese or Japanese text does not matter.
    assert normalize("東京は、晴れ。") == normalize("東京 は晴れ") == "東 京 は 晴 れ"
    assert normalize("東京は、晴れ。", Normalization(cjk_characters=False)) == "東京は 晴れ"
    mixed = words(normalize("Prometheus 在效能上ーコンピュータ 서울은 맑음 ภาษาไทย"))
    assert mixed == ["prometheus", *"在效能上ーコンピュータ", "서울은", "맑음", "ภาษาไทย"]


EDGE_TEXTS = [
    None,
    "",
    "   \n\t ",
    "İstanbul ŞEHİR straße ǅ",  # special and title case
    "ｆｕｌｌ　ｗｉｄｔｈ①",  # ideographic space, compatibility forms
    "a\x1cb\u2028c\u00a0d\u200be",  # separators of several kinds, a zero-width space
    "emoji 🙂🙂 and ZWJ 👩‍💻 — “quotes” «guillemets»",
    "Tiếng Việt có dấu; العربية، نص؛ עברית",
    "量子コンピュータを使うと素因数分解が高速にできる。 了解 Prometheus 功能々",  # Han, kana, Latin
    "x" * 70_000,  # one long word
]


@pytest.mark.parametrize(
    "how",
    [
        Normalization(),
        Normalization(digits=True),
        Normalization(whitespace=False, lowercase=False, punctuation=False, unicode_form="none"),
        Normalization(unicode_form="NFD"),
        Normalization(cjk_characters=False),
        Normalization(whitespace=False),
    ],
)
def test_a_batch_normalises_each_text_as_alone_and_words_agree(how):
    normalized, lists = normalize_batch(EDGE_TEXTS, how)
    assert normalized == [normalize(t, how) for t in EDGE_TEXTS]
    assert lists.to_pylist() == [words(n, how) for n in normalized]
    assert all("" not in w for w in lists.to_pylist())
    if how.whitespace:
        assert all(n == " ".join(w) for n, w in zip(normalized, lists.to_pylist(), strict=True))
    # Batch neighbours do not change a text's result.
    assert normalize_batch(EDGE_TEXTS[::-1], how)[0] == normalized[::-1]


def test_unicode_forms_compose_and_decompose_as_named():
    composed, decomposed = "dobr\u00fd", "dobry\u0301"
    assert normalize(decomposed) == composed  # NFKC composes (Arrow's own kernel would not)
    assert normalize(composed, Normalization(unicode_form="NFD")) == decomposed
    assert normalize(composed, Normalization(unicode_form="none")) == composed


def test_shingles_from_arrow_lists_equal_shingles_from_word_lists():
    mh = MinHasher()
    rng = random.Random(3)
    docs = [_doc(rng, n) for n in (0, 1, 4, 5, 6, 200)]
    texts = [" ".join(d) for d in docs]
    from_arrow = mh.shingles(normalize_batch(texts)[1])
    from_lists = mh.shingles(docs)
    assert all(np.array_equal(a, b) for a, b in zip(from_arrow, from_lists, strict=True))


def test_exact_hash_is_none_without_text_and_equal_for_normalised_equals():
    assert exact_hash("") is None
    assert exact_hash(normalize("The cat.")) == exact_hash(normalize("the   CAT"))
    assert exact_hash("the cat") != exact_hash("the cat sat")
    assert len(exact_hash("x")) == 32  # 128 bits


def test_shingles_are_word_ngrams_and_short_documents_get_their_own():
    mh = MinHasher(ngram=5)
    long_doc, short_a, short_b, empty = ["a", "b", "c", "d", "e", "f", "g"], ["a", "b"], ["a", "c"], []
    sh = mh.shingles([long_doc, short_a, short_b, empty])
    assert [len(s) for s in sh] == [3, 1, 1, 0]
    assert sh[1][0] != sh[2][0]  # two short documents never share one signature by accident
    # The same words give the same hashes in any batch: hashing does not depend on batch composition.
    again = mh.shingles([["z"] * 3, long_doc])[1]
    assert np.array_equal(again, sh[0])


def test_signature_of_a_document_without_words_is_empty_and_has_no_bands():
    cfg = DedupConfig()
    rows = signature_rows([None, "", "!!!", "one", "one two three four five six"], cfg)
    assert rows["exact_hash"][:3] == [None, None, None]
    assert rows["bands"][:3] == [None, None, None]
    assert rows["bands"][3] is not None and len(rows["bands"][4]) == cfg.bands
    assert rows["words"] == [0, 0, 0, 1, 6]


def test_signatures_do_not_depend_on_block_boundaries(monkeypatch):
    rng = random.Random(3)
    mh = MinHasher()
    docs = [_doc(rng, rng.randint(0, 3000)) for _ in range(20)]
    whole = mh.signatures(mh.shingles(docs))
    import slm_curator.dedup.minhash as minhash

    monkeypatch.setattr(minhash, "BLOCK_ROWS", 97)  # blocks that split documents everywhere
    assert np.array_equal(whole, mh.signatures(mh.shingles(docs)))
    one_by_one = np.vstack([mh.signatures(mh.shingles([d])) for d in docs])
    assert np.array_equal(whole, one_by_one)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 1.0))
def test_signature_agreement_estimates_jaccard(seed, overlap):
    """The fraction of equal minima is an unbiased estimate of Jaccard: within 4.5 sigma at 512 permutations."""
    rng = random.Random(seed)
    shared = _doc(rng, int(400 * overlap))
    a, b = shared + _doc(rng, 400 - len(shared)), shared + _doc(rng, 400 - len(shared))
    mh = MinHasher(num_perm=512, bands=64, rows=8, ngram=1)
    sets = mh.shingle_sets([a, b])
    true = jaccard(sets[0], sets[1])
    sig = mh.signatures(mh.shingles([a, b]))
    sigma = max(np.sqrt(true * (1 - true) / 512), 1 / 512)
    assert abs(estimated_jaccard(sig[0], sig[1]) - true) <= 4.5 * sigma + 1e-9


def test_band_keys_collide_for_near_copies_and_not_for_strangers():
    rng = random.Random(7)
    mh = MinHasher()
    base = _doc(rng, 800)
    near = list(base)
    for i in rng.sample(range(len(near)), 8):  # 1% of words substituted: Jaccard ~0.95
        near[i] = rng.choice(VOCAB)
    stranger = _doc(rng, 800)
    keys = mh.band_keys(mh.signatures(mh.shingles([base, near, stranger])))
    assert (keys[0] == keys[1]).sum() >= 1
    assert (keys[0] == keys[2]).sum() == 0
    assert keys.dtype == np.int64 and keys.shape == (3, 14)


def test_a_ten_megabyte_document_hashes_in_bounded_memory():
    rng = random.Random(1)
    big = " ".join(_doc(rng, 1_800_000))  # ~10 MB of text
    assert len(big) > 10_000_000
    import tracemalloc

    tracemalloc.start()
    rows = signature_rows([big, "w1 w2 w3"], DedupConfig())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rows["words"][0] == 1_800_000 and len(rows["bands"][0]) == 14
    # Minima in blocks: all 112 permutations of 1.8M shingles at once would be 1.6 GB.
    assert peak < 600 * 2**20, peak


def test_jaccard_of_sets():
    a, b = np.array([1, 2, 3], dtype=np.uint64), np.array([2, 3, 4], dtype=np.uint64)
    assert jaccard(a, b) == pytest.approx(0.5)
    assert jaccard(a, a) == 1.0
    assert jaccard(a[:0], a[:0]) == 0.0


def test_repeated_word_documents_match_only_their_own_word():
    cfg = DedupConfig()
    rows = signature_rows(
        ["ha " * 1000, "ha " * 40, "ho " * 1000, words("ha ho " * 10) and "ha ho " * 10], cfg
    )
    bands = [np.asarray(b) for b in rows["bands"]]
    assert np.array_equal(bands[0], bands[1])  # the same single shingle: Jaccard 1 as sets
    assert not (bands[0] == bands[2]).any() and not (bands[0] == bands[3]).any()


def test_union_find_roots_are_component_minima():
    assert components([(3, 1), (1, 2), (5, 4)]) == {1: 1, 2: 1, 3: 1, 4: 4, 5: 4}
    assert components([]) == {}


def test_word_split_equals_arrows_unicode_split_on_every_kind_of_whitespace():
    import pyarrow as pa
    import pyarrow.compute as pc

    from slm_curator.text.normalize import split_words

    spaces = ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", " ", "\x85", "\xa0", "\u1680", "\u2000",
              "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]  # fmt: skip
    texts = [f"{s}a{s}{s}b c{s}" for s in spaces] + ["plain ascii  words ", "", "   ", "é ü\u00a0ß"]
    for batch in (texts, texts[::2], texts[5:9], ["plain", "x\xa0y"]):
        arr = pa.array(batch, pa.large_string())
        reference = [[w for w in ws if w] for ws in pc.utf8_split_whitespace(arr).to_pylist()]
        assert split_words(arr).to_pylist() == reference
