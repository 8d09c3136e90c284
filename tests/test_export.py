"""Export: mixture plans, Gumbel-key sampling statistics, exact budget prefixes, shards end to end."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from slm_curator import delta
from slm_curator.config import ConfigError
from slm_curator.export import sampling
from slm_curator.export.shard_format import (
    ShardFormatError,
    file_sha256,
    open_shard,
    read_header,
    write_shard,
)

ADJECTIVES = ["big", "small", "red", "blue", "happy", "old", "quiet", "bright"]
NOUNS = ["cat", "dog", "bird", "tree", "house", "river", "garden", "friend"]
VERBS = ["sat", "ran", "sang", "walked", "slept", "looked"]
PLACES = ["on the mat", "by the river", "in the garden", "under the tree", "near the house"]


def _sentences(rng: random.Random, n: int) -> str:
    """Grammatical, learnable text: what follows a word depends on it, unlike i.i.d. words."""
    return " ".join(
        f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} {rng.choice(PLACES)}."
        for _ in range(n)
    )


# ----------------------------------------------------------------------------------------------
# Pure parts
# ----------------------------------------------------------------------------------------------


def test_plan_natural_proportions_and_take_all():
    plans = {p.source: p for p in sampling.plan_mixture({"a": 300, "b": 100}, {}, 200, 4.0)}
    assert plans["a"].target_tokens == 150 and plans["b"].target_tokens == 50
    everything = {p.source: p for p in sampling.plan_mixture({"a": 300, "b": 100}, {}, 0, 4.0)}
    assert everything["a"].full_passes == 1 and everything["a"].remainder_tokens == 0
    assert everything["b"].target_tokens == 100


def test_plan_caps_repetition_and_redistributes_the_shortfall():
    # b wants 500 of 1000 but has 100 tokens: 4 epochs (400) at most; the 100 left go to a and c by weight.
    plans = {
        p.source: p
        for p in sampling.plan_mixture(
            {"a": 10_000, "b": 100, "c": 10_000}, {"a": 0.25, "b": 0.5, "c": 0.25}, 1000, 4.0
        )
    }
    assert (
        plans["b"].target_tokens == 400 and plans["b"].full_passes == 4 and plans["b"].remainder_tokens == 0
    )
    assert plans["a"].target_tokens == 300 and plans["c"].target_tokens == 300
    assert sum(p.target_tokens for p in plans.values()) == 1000
    assert plans["b"].epochs == pytest.approx(4.0)


def test_plan_star_weight_and_unnamed_sources():
    plans = {
        p.source: p
        for p in sampling.plan_mixture({"a": 1000, "x": 1000, "y": 1000}, {"a": 0.5, "*": 0.25}, 800, 4)
    }
    assert (plans["a"].target_tokens, plans["x"].target_tokens, plans["y"].target_tokens) == (400, 200, 200)
    none_for_rest = {p.source: p for p in sampling.plan_mixture({"a": 1000, "x": 1000}, {"a": 1.0}, 500, 4)}
    assert none_for_rest["x"].target_tokens == 0 and none_for_rest["a"].target_tokens == 500


def test_plan_budget_beyond_every_cap_takes_max_epochs_of_everything():
    plans = sampling.plan_mixture({"a": 10, "b": 20}, {"a": 1, "b": 1}, 10_000, 2.0)
    assert [(p.source, p.target_tokens, p.full_passes) for p in plans] == [("a", 20, 2), ("b", 40, 2)]


def test_quality_bucket_labels():
    edges = [1.0, 2.0, 3.0]
    assert [sampling.quality_bucket(s, edges) for s in (0.5, 1.0, 2.5, 3.0, None)] == [
        "-inf-1",
        "1-2",
        "2-3",
        "3-inf",
        "unscored",
    ]


def test_uniform_from_hash_is_inside_the_open_interval():
    h = np.array([0, -1, 2**63 - 1, -(2**63)], dtype=np.int64)
    u = sampling.uniform_from_hash(h)
    assert np.all((u > 0) & (u < 1))


def test_gumbel_top1_follows_softmax_pure():
    rng = np.random.default_rng(0)
    scores = np.array([0.0, 0.5, 1.0, 2.0])
    tau, n = 0.7, 20_000
    wins = np.bincount(
        [np.argmax(sampling.gumbel_keys(scores, rng.random(4), tau)) for _ in range(n)], minlength=4
    )
    expected = n * np.exp(scores / tau) / np.exp(scores / tau).sum()
    assert stats.chisquare(wins, expected).pvalue > 1e-3


def test_shard_format_round_trip_and_corruption(tmp_path):
    rows = np.arange(40, dtype=np.int64).reshape(4, 10)
    sha = write_shard(tmp_path / "s.bin", rows, vocab_size=100, eos_id=0)
    header, mm = open_shard(tmp_path / "s.bin")
    assert (header.sequences, header.seq_len, header.token_bytes, header.vocab_size) == (4, 10, 2, 100)
    assert np.array_equal(mm, rows) and sha == file_sha256(tmp_path / "s.bin")
    big = write_shard(tmp_path / "b.bin", rows + 70_000, vocab_size=80_000, eos_id=0)
    assert read_header(tmp_path / "b.bin").token_bytes == 4 and big
    with open(tmp_path / "s.bin", "ab") as f:
        f.write(b"xx")
    with pytest.raises(ShardFormatError, match="header promises"):
        read_header(tmp_path / "s.bin")
    with pytest.raises(ValueError, match="token ids"):
        write_shard(tmp_path / "c.bin", rows, vocab_size=10, eos_id=0)


# ----------------------------------------------------------------------------------------------
# Spark selection
# ----------------------------------------------------------------------------------------------


def test_spark_gumbel_top1_follows_softmax_and_is_seeded(spark):
    """For many seeds, the winner among 5 documents is distributed as softmax(score / τ)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from slm_curator.export.select import gumbel_key, hash_uniform

    scores = [0.0, 0.5, 1.0, 1.5, 3.0]
    tau, n = 1.2, 4000
    docs = spark.createDataFrame([(f"d{i}", s) for i, s in enumerate(scores)], "doc_id string, score double")
    seeds = spark.range(n).withColumnRenamed("id", "seed")
    keyed = docs.crossJoin(seeds).withColumn(
        "key", gumbel_key(F.col("score"), hash_uniform(F.col("seed"), F.col("doc_id")), tau)
    )
    top = keyed.withColumn("r", F.row_number().over(Window.partitionBy("seed").orderBy(F.desc("key")))).where(
        "r = 1"
    )
    counts = {r["doc_id"]: r["count"] for r in top.groupBy("doc_id").count().collect()}
    observed = np.array([counts.get(f"d{i}", 0) for i in range(len(scores))])
    p = np.exp(np.array(scores) / tau)
    expected = n * p / p.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    again = {r["doc_id"]: r["count"] for r in top.groupBy("doc_id").count().collect()}
    assert again == counts


def _prefix_reference(pdf: pd.DataFrame, budgets: dict[str, int]) -> set[str]:
    chosen = set()
    for group, rows in pdf.sort_values(["key", "doc_id"], ascending=[False, True]).groupby("g", sort=False):
        running = rows["w"].cumsum()
        chosen |= set(rows.loc[running <= budgets.get(group, 0), "doc_id"])
    return chosen


@pytest.mark.parametrize("buckets", [3, 1000])
def test_take_prefix_is_exact_whatever_the_buckets(spark, buckets):
    from slm_curator.export.select import take_prefix

    rng = random.Random(5)
    rows = [
        (f"d{i:04d}", rng.choice("abc"), float(rng.randint(0, 40)), rng.randint(1, 30)) for i in range(600)
    ]
    pdf = pd.DataFrame(rows, columns=["doc_id", "g", "key", "w"])
    budgets = {"a": 1500, "b": 10_000_000, "c": 0}
    df = spark.createDataFrame(pdf)
    got = {
        r["doc_id"]
        for r in take_prefix(df, "key", "w", budgets, "g", "doc_id", buckets=buckets)
        .where("in_prefix")
        .collect()
    }
    assert got == _prefix_reference(pdf, budgets)
    assert len(take_prefix(df, "key", "w", budgets, "g", "doc_id", buckets=buckets).collect()) == 600


# ----------------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------------


def _write_curated(spark, cfg, name="scored", scored=True, n=480):
    rng = random.Random(11)
    rows = []
    for i in range(n):
        source = "web" if i % 4 else ("books" if i % 8 == 0 else "code")
        row = {
            "doc_id": f"doc{i:05d}",
            "source": source,
            "text_clean": _sentences(rng, rng.randint(2, 16)),
            "keep": i % 10 != 3,
            "cluster_id": f"c{i // 3}",
        }
        if scored:
            row["quality_score"] = round(rng.uniform(0, 5), 3)
        rows.append(row)
    df = spark.createDataFrame(pd.DataFrame(rows))
    delta.write(df, delta.table_ref(cfg.storage, name), "overwrite")
    return pd.DataFrame(rows)


def _export_cfg(cfg, **export):
    e = dataclasses.replace(
        cfg.export,
        **{
            "tokenizer": dataclasses.replace(cfg.export.tokenizer, vocab_size=400, sample_documents=200),
            "seq_len": 33,
            "shard_tokens": 3000,
            "val_fraction": 0.15,
            **export,
        },
    )
    return dataclasses.replace(cfg, export=e)


def _decode_rows(folder: Path, split: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    manifest = json.loads((folder / "manifest.json").read_text())
    tokens = np.concatenate([open_shard(folder / f)[1].reshape(-1) for f in manifest["splits"][split]])
    return tok, tokens


def test_export_end_to_end_budget_mixture_anneal_split_and_reruns(spark, cfg):
    from slm_curator.export.stage import run_export

    truth = _write_curated(spark, cfg)
    cfg = _export_cfg(
        cfg, token_budget=8000, mixture={"web": 0.5, "books": 0.3, "*": 0.2}, anneal_fraction=0.2
    )
    first = run_export(spark, cfg, "run-1")
    assert not first.skipped and first.tokenizer_trained and first.has_score
    folder = Path(first.folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    shards = delta.read(spark, delta.table_ref(cfg.storage, "shards")).toPandas()
    assert set(shards["split"]) == {"train", "anneal", "val"}
    assert (shards["input_version"] == 0).all() and (shards["fingerprint"] == first.fingerprint).all()

    # Budget: the selected documents' tokens (train + anneal) fill it to within one document.
    selected = shards[shards["split"] != "val"]["document_tokens"].sum()
    assert 8000 - 200 <= selected <= 8000
    # Mixture: per-source tokens follow the weights where no cap binds (books has ~1/8 of the docs).
    by_source = pd.DataFrame(list(shards[shards["split"] != "val"]["tokens_by_source"])).sum()
    assert by_source["web"] == pytest.approx(4000, abs=200) and by_source["code"] == pytest.approx(
        1600, abs=200
    )
    # Annealing slice: its scores are the top of what was selected, about 20% of the tokens.
    anneal_tokens = shards[shards["split"] == "anneal"]["document_tokens"].sum()
    assert anneal_tokens == pytest.approx(0.2 * selected, abs=200)

    # Every shard decodes to curated documents; the val split shares no cluster with training.
    tok, val_tokens = _decode_rows(folder, "val")
    eos = manifest["eos_id"]
    val_docs = {
        d.strip() for d in tok.decode(val_tokens.tolist(), skip_special_tokens=False).split("<|endoftext|>")
    }
    kept = truth[truth["keep"]]
    text_to_cluster = dict(zip(kept["text_clean"], kept["cluster_id"], strict=True))
    val_clusters = {text_to_cluster[d] for d in val_docs if d in text_to_cluster}
    assert val_clusters, "at least one whole validation document decodes back to its text"
    _, train_tokens = _decode_rows(folder, "train")
    train_docs = set(tok.decode(train_tokens.tolist(), skip_special_tokens=False).split("<|endoftext|>"))
    train_clusters = {text_to_cluster[d] for d in train_docs if d in text_to_cluster}
    assert not (val_clusters & train_clusters)
    assert eos == tok.token_to_id("<|endoftext|>")
    dropped = set(truth.loc[~truth["keep"], "text_clean"])
    assert not (train_docs & dropped)

    # Same input and config: nothing to do.
    again = run_export(spark, cfg, "run-2")
    assert again.skipped and again.fingerprint == first.fingerprint
    assert delta.current_version(spark, delta.table_ref(cfg.storage, "shards")) == first.shards_version

    # A killed export (one file missing, the table not yet written) resumes: the rest are reused,
    # and the rewritten file is byte-identical.
    digests = {p.name: file_sha256(p) for p in folder.glob("*.bin")}
    victim = sorted(folder.glob("train-*.bin"))[0]
    victim.unlink()
    resumed = run_export(spark, cfg, "run-3")
    assert not resumed.skipped and resumed.files_reused == len(digests) - 1
    assert {p.name: file_sha256(p) for p in folder.glob("*.bin")} == digests

    # From scratch (a new tokenizer trained again, every file rewritten): byte-identical.
    for p in folder.parent.rglob("*"):
        if p.is_file():
            p.unlink()
    rebuilt = run_export(spark, cfg, "run-4")
    assert rebuilt.tokenizer_trained and rebuilt.fingerprint == first.fingerprint
    assert {p.name: file_sha256(p) for p in folder.glob("*.bin")} == digests


def test_export_without_scores_is_uniform_and_repeats_small_sources(spark, cfg):
    from slm_curator.export.stage import run_export

    _write_curated(spark, cfg, name="filtered", scored=False, n=240)
    cfg = _export_cfg(
        cfg, token_budget=12_000, mixture={"books": 0.5, "*": 0.5}, max_epochs=2.0, anneal_fraction=0.3
    )
    result = run_export(spark, cfg)
    assert result.input_table.endswith("filtered") and not result.has_score
    assert "anneal" not in result.splits  # no scores: no "highest quality" slice to hold back
    plans = {p.source: p for p in result.plans}
    assert plans["books"].full_passes == 2 and plans["books"].remainder_tokens == 0
    shards = delta.read(spark, delta.table_ref(cfg.storage, "shards")).toPandas()
    quality = pd.DataFrame(list(shards["tokens_by_quality"])).columns
    assert list(quality) == ["unscored"]
    train = shards[shards["split"] == "train"]
    assert train["copies"].sum() > train["documents"].sum()  # books appear twice


def test_export_config_errors_name_the_key(spark, cfg):
    from slm_curator.export.stage import run_export

    with pytest.raises(FileNotFoundError, match="export.input_table: no table scored or deduped or filtered"):
        run_export(spark, cfg)
    _write_curated(spark, cfg, n=30)
    with pytest.raises(ConfigError, match="export.text_column"):
        run_export(spark, _export_cfg(cfg, text_column="body"))
    with pytest.raises(ConfigError, match="export.temperature"):
        run_export(spark, _export_cfg(cfg, temperature=0.0))
    with pytest.raises(ConfigError, match="export.output_dir"):
        run_export(spark, _export_cfg(cfg, output_dir="s3://bucket/shards"))
