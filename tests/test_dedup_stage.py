"""The dedup stage end to end on Delta tables: clusters, representatives, bad input, incremental runs."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta

import pytest

from slm_curator import delta
from slm_curator.errors import ConfigError
from slm_curator.pipeline import run_pipeline

pytestmark = pytest.mark.spark

SCHEMA = "doc_id string, source string, text_clean string, keep boolean, ingested_at timestamp"
VOCAB = [f"word{i}" for i in range(20000)]
T0 = datetime(2026, 1, 1)


def _text(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def _edit(text: str, fraction: float, seed: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * fraction)):
        words[i] = rng.choice(VOCAB)
    return " ".join(words)


def _rows(texts: dict[str, str | None], keep: bool = True, day: int = 0):
    return [
        (d, "test", t, keep, T0 + timedelta(days=day, seconds=i)) for i, (d, t) in enumerate(texts.items())
    ]


def _write(spark, cfg, rows, mode="overwrite", schema=SCHEMA, table="filtered"):
    ref = delta.table_ref(cfg.storage, table)
    delta.write(spark.createDataFrame(rows, schema), ref, mode)
    return ref


def _dedup(spark, cfg, **settings):
    cfg = dataclasses.replace(cfg, dedup=dataclasses.replace(cfg.dedup, **settings))
    (summary,) = run_pipeline(cfg, stages=["dedup"], spark=spark)
    table = delta.read(spark, delta.table_ref(cfg.storage, "deduped"))
    return summary, {r["doc_id"]: r.asDict() for r in table.collect()}


def test_exact_and_near_duplicates_form_clusters_with_one_representative(spark, cfg):
    base, other = _text(1), _text(2)
    texts = {
        "a": base,
        "b": base.title(),  # an exact duplicate after normalisation
        "c": _edit(base, 0.01, 3),  # a near duplicate
        "d": base + " " + _text(9, 10),  # longer: it is the representative
        "e": other,
        "f": "hello world",
        "g": "Hello, world!",
        "h": None,
        "i": "",
        "j": "?!",
    }
    _write(spark, cfg, _rows(texts) + _rows({"z": base}, keep=False))
    summary, out = _dedup(spark, cfg)
    assert len(out) == len(texts)  # every selected row stays; `z` (keep = false) was not selected
    cluster = {out[d]["cluster_id"] for d in "abcd"}
    assert cluster == {"a"} and out["a"]["cluster_size"] == 4
    assert [d for d in "abcd" if out[d]["keep"]] == ["d"]
    assert all(out[d]["duplicate_of"] == "d" and out[d]["is_duplicate"] for d in "abc")
    assert out["d"]["duplicate_of"] is None and not out["d"]["is_duplicate"]
    assert out["a"]["exact_hash"] == out["b"]["exact_hash"] != out["c"]["exact_hash"]
    assert (
        out["f"]["cluster_id"] == out["g"]["cluster_id"] == "f" and out["f"]["duplicate_of"] == "g"
    )  # longer
    assert out["e"]["cluster_size"] == 1 and out["e"]["keep"]
    for d in "hij":  # no words: its own cluster, kept, never merged into a shared empty signature
        assert out[d]["cluster_size"] == 1 and out[d]["keep"] and out[d]["exact_hash"] is None
    assert "duplicate rate" in summary.details and summary.details["duplicate rate"].startswith("40.00%")
    assert "rounds" in summary.details["components"]


def test_verification_rejects_candidates_below_the_threshold(spark, cfg):
    base = _text(4, 400)
    texts = {"a": base, "b": _edit(base, 0.06, 5)}  # 5-gram Jaccard ~0.58: a candidate under 56 x 2 bands
    _write(spark, cfg, _rows(texts))
    loose = {"num_perm": 112, "bands": 56, "rows": 2}
    _, verified = _dedup(spark, cfg, **loose)
    assert verified["b"]["cluster_size"] == 1
    edges = delta.read(spark, delta.table_ref(cfg.storage, "dedup_edges")).collect()
    assert len(edges) == 1 and 0.4 < edges[0]["jaccard"] < 0.8 and not edges[0]["verified"]
    _, unverified = _dedup(spark, cfg, verify=False, **loose)
    assert unverified["b"]["cluster_id"] == "a"
    _, lowered = _dedup(spark, cfg, jaccard_threshold=0.4, **loose)
    assert lowered["b"]["cluster_id"] == "a"


def test_a_bucket_of_many_near_copies_costs_linear_edges(spark, cfg):
    template = _text(6, 200)
    texts = {f"p{i:05d}": f"{template} footer{i} item{i}" for i in range(1500)}
    _write(spark, cfg, _rows(texts))
    summary, out = _dedup(spark, cfg)
    assert {r["cluster_id"] for r in out.values()} == {"p00000"}
    candidates = int(summary.details["edges"].split(", ")[1].split()[0])
    assert 1499 <= candidates <= 14 * 1500  # star edges; all pairs would be 1,124,250


def test_bad_input_neither_crashes_nor_merges(spark, cfg):
    rng = random.Random(8)
    texts = {"big": " ".join(rng.choice(VOCAB) for _ in range(1_700_000))}  # ~10 MB
    texts |= {f"rep{i}": f"token{i} " * 500 for i in range(20)}  # one repeated word each
    texts |= {f"null{i}": None for i in range(20)} | {f"empty{i}": " " * i for i in range(20)}
    texts["long"] = _text(10, 400)
    _write(spark, cfg, _rows(texts))
    _, out = _dedup(spark, cfg)
    assert len(out) == len(texts)
    assert all(r["cluster_size"] == 1 and r["keep"] for r in out.values())


def test_representative_policies_and_their_columns(spark, cfg):
    base = _text(11)
    rows = [
        ("a", "s", base, True, T0 + timedelta(days=2), 1.0),
        ("b", "s", base + " extra words here", True, T0 + timedelta(days=1), 2.0),
        ("c", "s", base.upper(), True, T0, 3.0),
    ]
    _write(spark, cfg, rows, schema=SCHEMA + ", quality_score double")
    reps = {}
    for policy in ("longest", "quality", "earliest"):
        _, out = _dedup(spark, cfg, representative=policy)
        reps[policy] = [d for d, r in out.items() if r["keep"]]
    assert reps == {"longest": ["b"], "quality": ["c"], "earliest": ["c"]}
    _write(spark, cfg, [r[:5] for r in rows])
    with pytest.raises(ConfigError, match=r"dedup.representative: 'quality' needs a quality_score column"):
        _dedup(spark, cfg, representative="quality")


def test_any_input_table_and_text_column(spark, cfg):
    _write(
        spark,
        cfg,
        [("x", "s", "Same text, here!", None, T0), ("y", "s", "same text here", None, T0)],
        schema="doc_id string, source string, text string, meta string, ingested_at timestamp",
        table="documents",
    )
    _, out = _dedup(spark, cfg, input_table="documents", where="", text_column="text")
    assert out["y"]["duplicate_of"] == "x" and out["x"]["keep"]
    with pytest.raises(ConfigError, match=r"dedup.text_column: 'body' is not a column of documents"):
        _dedup(spark, cfg, input_table="documents", where="", text_column="body")


def test_incremental_batch_joins_old_clusters_without_moving_old_flags(spark, cfg):
    old = {f"o{i:03d}": _text(100 + i) for i in range(40)}
    old["o900"] = old["o000"].lower()  # an old exact pair: o000 represents it
    _write(spark, cfg, _rows(old))
    first, before = _dedup(spark, cfg)
    assert "full run" in first.details["duplicate rate"]
    new = {
        "n001": old["o001"] + " and a longer tail that would win on length",  # copies an old kept page
        "n002": _edit(old["o002"], 0.01, 1),
        "n900": old["o000"].upper(),
        "n500": _text(500),
        "n501": _text(500).title(),  # a new pair among new documents
    }
    _write(spark, cfg, _rows(new, day=1), mode="append")
    second, after = _dedup(spark, cfg)
    assert "incremental run" in second.details["duplicate rate"] and second.new_rows == len(new)
    assert {d: r["keep"] for d, r in after.items() if d in before} == {
        d: r["keep"] for d, r in before.items()
    }
    assert {d: r["cluster_id"] for d, r in after.items() if d in before} == {
        d: r["cluster_id"] for d, r in before.items()
    }
    assert after["n001"]["duplicate_of"] == "o001" and not after["n001"]["keep"]
    assert after["n002"]["duplicate_of"] == "o002"
    assert after["n900"]["cluster_id"] == "o000" and after["o000"]["cluster_size"] == 3
    assert after["n500"]["keep"] and after["n501"]["duplicate_of"] == "n500"
    # The same input version and config again: nothing new.
    third, again = _dedup(spark, cfg)
    assert third.new_rows == 0 and any(n.startswith("nothing new") for n in third.notes) and again == after
    # A config change rebuilds everything from the stored signatures (nothing is re-hashed).
    fourth, rebuilt = _dedup(spark, cfg, jaccard_threshold=0.7)
    assert "full run" in fourth.details["duplicate rate"] and fourth.new_rows == 0
    assert rebuilt["n001"]["keep"] and rebuilt["o001"]["duplicate_of"] == "n001"  # longest wins afresh


def test_a_member_whose_star_edge_fails_is_checked_against_the_next_members(spark, cfg):
    """Near copies that share a bucket only with a dissimilar, smaller doc_id still meet."""
    from slm_curator.dedup import candidates
    from slm_curator.dedup.minhash import jaccard
    from slm_curator.dedup.signatures import hasher
    from slm_curator.schemas import DEDUP_SIGNATURE

    a, p = _text(11, 400), _text(15, 400)
    b = _edit(a, 0.06, 12)
    q = _edit(p, 0.01, 16)
    texts = {
        "a": a, "b": b, "c": _edit(b, 0.005, 13), "d": _text(14, 400),  # bucket 7: b ~ c, neither ~ a
        "p": p, "q": q, "r": _edit(q, 0.02, 17),  # bucket 8: q ~ p passes, r ~ q but not ~ p
    }  # fmt: skip
    sets = dict(zip(texts, hasher(cfg.dedup).shingle_sets([t.split() for t in texts.values()]), strict=True))
    j = {pair: jaccard(sets[pair[0]], sets[pair[1]]) for pair in ("ba", "ca", "cb", "qp", "rp", "rq")}
    assert j["cb"] >= 0.8 > max(j["ba"], j["ca"]) and j["qp"] >= 0.8 > j["rp"] and j["rq"] >= 0.8, j
    sigs = spark.createDataFrame(
        [(d, i, f"h{d}", [8 if d in "pqr" else 7], 400, 396) for i, d in enumerate(texts)], DEDUP_SIGNATURE
    )
    frame = spark.createDataFrame(list(texts.items()), "doc_id string, text string")

    def accepted(centers):
        section = dataclasses.replace(cfg.dedup, star_centers=centers)
        edges = candidates.near_edges(sigs, frame, section).collect()
        assert len(edges) == len({(e["src"], e["dst"]) for e in edges})  # each pair checked once
        return {e["src"] + e["dst"] for e in edges if e["verified"]}, len(edges)

    assert accepted(1) == ({"qp"}, 5)  # b, c, d -> a and q, r -> p
    assert accepted(2) == ({"qp", "cb", "rq"}, 8)  # + c, d -> b and r -> q
    assert accepted(3) == ({"qp", "cb", "rq"}, 9)  # + d -> c
