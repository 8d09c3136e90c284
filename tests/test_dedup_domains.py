"""Dedup on kinds of text the fixtures lack: forum threads (headers, quoted replies, re-crawls),
syndicated news (one wire story under several sites' boilerplate), built from real prose, and Chinese
and Japanese pages (no spaces between words) re-crawled with 1% of their characters changed.

Each case states its premise as an exact Jaccard (checked here, so a failure says whether the stage
or the case is wrong), then one stage run must cluster exactly the pairs at or above the threshold.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
import re

import pytest
from tests.conftest import shared_data
from tests.test_dedup_stage import _dedup, _rows, _write

from slm_curator.config import DedupConfig
from slm_curator.dedup.minhash import jaccard
from slm_curator.dedup.signatures import hasher
from slm_curator.text.normalize import Normalization, normalize_batch

pytestmark = pytest.mark.spark


def _paragraphs() -> list[str]:
    """Paragraphs of 60+ words from consecutive sentences (the files hold one sentence per line)."""
    paras, current = [], []
    for name in ("austen-emma.txt", "chesterton-ball.txt", "carroll-alice.txt"):
        text = shared_data("prose", "gutenberg", name).read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            current += line.split()
            if len(current) >= 60:
                paras.append(" ".join(current))
                current = []
    return paras


def _post(rng: random.Random, body: str, quote: str | None = None) -> str:
    when = f"{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}/19({rng.choice(['Mon', 'Fri', 'Sat'])})"
    clock = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
    head = f"Anonymous {when}{clock} No.{rng.randrange(10**8, 10**9)}"
    quoted = "".join(f">{line}\n" for line in quote.split(". ")) if quote else ""
    return f"{head}\n>>{rng.randrange(10**8, 10**9)}\n{quoted}{body}"


def _thread(rng, bodies, quotes=None) -> list[str]:
    quotes = quotes or {}
    return [_post(rng, b, quotes.get(i)) for i, b in enumerate(bodies)]


NAV = {
    "a": "Home | World | Business | Markets | Tech | Sport | Opinion | Subscribe | Sign in",
    "b": "Skip to content. Menu. Local News Weather Traffic Sports Obituaries e-Edition Newsletters",
}
FOOT = {
    "a": "Copyright 2026 Daily Ledger. All rights reserved. Terms of use. Privacy policy. Cookie settings.",
    "b": "Comments are moderated. Report a typo. Follow us on social media. Sign up for breaking news alerts.",
}


def _page(site: str, story: list[str], byline: str) -> str:
    return "\n".join([NAV[site], byline, *story, FOOT[site]])


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _cjk_pages() -> list[str]:
    """The web sample's Chinese and Japanese pages (mostly Han or kana): 9 pages from 6 sites."""
    path = shared_data("web", "dolma_cc_2019-30_sample.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [json.loads(line).get("text") or "" for line in fh]
    return [t for t in texts if len(CJK.findall(t)) > max(800, 0.3 * len(t))]


def _edited(text: str, rate: float, rng: random.Random) -> str:
    """`text` with `rate` of its Han and kana characters replaced by others of the same page."""
    at = [m.start() for m in CJK.finditer(text)]
    chars = list(text)
    for i in rng.sample(at, int(rate * len(at))):
        chars[i] = text[rng.choice(at)]
    return "".join(chars)


def _corpus():
    paras = _paragraphs()
    rng = random.Random(20261203)
    pick = iter(rng.sample(paras, 80))
    thread = [next(pick) for _ in range(12)]
    others = [next(pick) for _ in range(9)]
    story = [next(pick) for _ in range(10)]
    story2 = [next(pick) for _ in range(10)]
    docs = {
        # the same thread crawled twice: a day later it has two more replies and new post numbers
        "forum_t1": "\n".join(_thread(random.Random(1), thread)),
        "forum_t1_recrawl": "\n".join(
            _thread(random.Random(1), thread) + _thread(rng, [next(pick), next(pick)])
        ),
        # another thread quoting three of its posts in full: shares text, is not the same document
        "forum_t2_quotes": "\n".join(
            _thread(rng, others[:3] + others, {0: thread[0], 1: thread[1], 2: thread[2]})
        ),
        # same header pattern and short replies, different content
        "forum_t3_short": "\n".join(
            _post(rng, w) for w in ["bump", "this", "lol no", "source?", "based"] * 6
        ),
        "forum_t4_short": "\n".join(
            _post(rng, w) for w in ["bump", "this", "lol no", "source?", "based"] * 6
        ),
        # a wire story on two sites, and updated with a correction
        "news_a": _page("a", story, "By Staff Writer, Associated Press"),
        "news_b": _page(
            "b", story, "Associated Press. Published 7:41 a.m. ET Dec. 3, 2026. Updated 9:02 a.m."
        ),
        "news_b_update": _page(
            "b",
            [*story, "Correction: an earlier version of this story gave the wrong day for the hearing."],
            "Associated Press. Updated 11:15 a.m. ET Dec. 3, 2026.",
        ),
        # the first half of the story only (a teaser page), and another story under the same boilerplate
        "news_teaser": _page("a", story[:5], "By Staff Writer, Associated Press"),
        "news_other": _page("a", story2, "By Staff Writer, Associated Press"),
    }
    cjk = _cjk_pages()
    for k, page in enumerate(cjk):
        docs[f"cjk_{k}"] = page
        docs[f"cjk_{k}_edited"] = _edited(page, 0.01, random.Random(k))
    docs["cjk_teaser"] = cjk[1][: len(cjk[1]) // 2]  # the first half of a Japanese page
    return docs


def _exact_jaccard(a: str, b: str, cfg: DedupConfig) -> float:
    mh = hasher(cfg)
    _, words = normalize_batch([a, b], cfg.normalize)
    sa, sb = mh.shingle_sets(words)
    return jaccard(sa, sb)


SAME = [("forum_t1", "forum_t1_recrawl"), ("news_a", "news_b"), ("news_b", "news_b_update")]
N_CJK = 9


def test_domain_premises_hold_as_exact_jaccard():
    docs, cfg = _corpus(), DedupConfig()
    assert sum(1 for d in docs if d.startswith("cjk_") and d.endswith("_edited")) == N_CJK
    for a, b in SAME:
        assert _exact_jaccard(docs[a], docs[b], cfg) >= 0.8, (a, b)
    # Each Han and kana character a word: every page stays near its edited copy. As whitespace
    # words (a clause each), most fall below the threshold: the case for `cjk_characters`.
    whitespace_words = dataclasses.replace(cfg, normalize=Normalization(cjk_characters=False))
    below = 0
    for k in range(N_CJK):
        page, edited = docs[f"cjk_{k}"], docs[f"cjk_{k}_edited"]
        assert _exact_jaccard(page, edited, cfg) >= 0.85, k
        below += _exact_jaccard(page, edited, whitespace_words) < 0.8
    assert below >= N_CJK - 2
    assert _exact_jaccard(docs["cjk_1"], docs["cjk_teaser"], cfg) < 0.8
    cjk = [docs[f"cjk_{k}"] for k in range(N_CJK)]
    assert max(_exact_jaccard(a, b, cfg) for i, a in enumerate(cjk) for b in cjk[i + 1 :]) < 0.5
    for a, b in [
        ("forum_t1", "forum_t2_quotes"),
        ("forum_t3_short", "forum_t4_short"),
        ("news_a", "news_teaser"),
        ("news_a", "news_other"),
    ]:
        assert _exact_jaccard(docs[a], docs[b], cfg) < 0.8, (a, b)


def test_forum_threads_and_syndicated_news_cluster_only_true_duplicates(spark, cfg):
    docs = _corpus()
    _write(spark, cfg, _rows(docs))
    _, out = _dedup(spark, cfg)
    clusters: dict[str, set[str]] = {}
    for doc_id, row in out.items():
        clusters.setdefault(row["cluster_id"], set()).add(doc_id)
    groups = sorted(sorted(g) for g in clusters.values() if len(g) > 1)
    cjk_pairs = [[f"cjk_{k}", f"cjk_{k}_edited"] for k in range(N_CJK)]
    assert groups == sorted(
        [["forum_t1", "forum_t1_recrawl"], ["news_a", "news_b", "news_b_update"], *cjk_pairs]
    )
    # the representative is the longest member: the re-crawl with more replies, the updated story
    assert out["forum_t1"]["duplicate_of"] == "forum_t1_recrawl"
    assert out["news_a"]["duplicate_of"] == "news_b_update"
    assert not any(
        out[d]["is_duplicate"] for d in ("forum_t2_quotes", "news_teaser", "news_other", "cjk_teaser")
    )
