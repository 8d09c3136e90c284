"""A labelled near-duplicate corpus from real documents, and the accuracy of three deduplicators on it.

How the corpus is made (every choice is seeded, so a run is reproducible):
1. Base documents are real text from ../shared/data: web pages (Dolma CC, C4), the FineWeb-Edu
   sample, and ~4 KB chunks of Gutenberg books and WikiText; at least 80 words each.
2. Bases that are already near each other (5-gram Jaccard >= 0.5, found with a low-threshold LSH and
   checked exactly) are dropped, so every similar pair in the corpus is one this script made.
3. Each base gets 0-4 variants, each made by one kind of edit at a rate drawn from 0-15% of its words:
   insertions (words from other documents), deletions, substitutions, or paragraph moves (with a
   light substitution so a move is not an exact copy); a third of the variants chain off another
   variant rather than the base.
4. The exact Jaccard of every pair within a family is computed on the stage's shingles (normalised
   text, word 5-grams); a pair is a duplicate when it is >= 0.8.

Then (`main`): pair detection of the dedup stage (pairs in one cluster), datasketch MinHashLSH (its
candidates, and its candidates checked by exact Jaccard), and Spark ML MinHashLSH
(approxSimilarityJoin at distance 0.2) against those labels; and the stage's clusters against a
single-machine reference (datasketch LSH on the same shingle hashes, exact Jaccard, union-find), with
every document whose cluster differs explained. Any predicted pair across families has its exact
Jaccard computed too, so a pair the generator did not make still counts by its true similarity.

    python benchmarks/dedup_data.py [--bases 4000] [--out benchmarks/results/dedup_accuracy.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "lib"))

from slm_curator.config import DedupConfig  # noqa: E402
from slm_curator.dedup.minhash import MinHasher, jaccard  # noqa: E402
from slm_curator.dedup.union_find import components  # noqa: E402
from slm_curator.text.normalize import normalize_batch  # noqa: E402

THRESHOLD = 0.8
EDITS = ("insert", "delete", "substitute", "move")


def _jsonl(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield json.loads(line)


def _chunks(text: str, size: int = 4000):
    paragraphs, chunk = [p for p in text.split("\n") if p.strip()], []
    for p in paragraphs:
        chunk.append(p)
        if sum(map(len, chunk)) >= size:
            yield "\n".join(chunk)
            chunk = []


def real_documents(shared: Path = SHARED) -> list[str]:
    """Real texts of 80+ words: web pages, FineWeb-Edu documents, book and Wikipedia chunks."""
    texts: list[str] = []
    for path in sorted((shared / "web").glob("*.gz")) + [
        shared / "quality" / "fineweb_edu_llama3_scored_3k.jsonl.gz"
    ]:
        texts += [r.get("text") or "" for r in _jsonl(path)]
    for path in sorted((shared / "prose").rglob("*.txt")):
        texts += list(_chunks(path.read_text(encoding="utf-8", errors="replace")))
    return [t for t in texts if len(t.split()) >= 80]


def shingle_sets(texts: list[str], mh: MinHasher) -> list[np.ndarray]:
    cfg = DedupConfig()
    return mh.shingle_sets(normalize_batch(texts, cfg.normalize)[1])


def distinct(texts: list[str], threshold: float = 0.5) -> list[str]:
    """Texts with no earlier kept text at Jaccard >= threshold (20 x 5 bands: candidates from ~0.4 up)."""
    mh = MinHasher(num_perm=100, bands=20, rows=5, ngram=5)
    sets = shingle_sets(texts, mh)
    keys = mh.band_keys(mh.signatures(sets))
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    kept: list[int] = []
    for i, s in enumerate(sets):
        seen = {j for b, k in enumerate(keys[i]) for j in buckets.get((b, int(k)), [])}
        if len(s) and all(jaccard(s, sets[j]) < threshold for j in seen):
            kept.append(i)
            for b, k in enumerate(keys[i]):
                buckets[(b, int(k))].append(i)
    return [texts[i] for i in kept]


def edit(text: str, kind: str, rate: float, donor: list[str], rng: random.Random) -> str:
    """One kind of edit on `rate` of the words (a move shifts paragraphs and substitutes rate / 4)."""
    if kind == "move":
        parts = [p for p in text.split("\n") if p.strip()]
        if len(parts) < 3:
            parts = text.split(". ")
        i = rng.randrange(len(parts))
        moved = parts.pop(i)
        parts.insert(rng.randrange(len(parts) + 1), moved)
        text = ("\n" if "\n" in text else ". ").join(parts)
        kind, rate = "substitute", rate / 4
    tokens = text.split(" ")
    n = max(1, int(len(tokens) * rate))
    if kind == "delete":
        drop = set(rng.sample(range(len(tokens)), min(n, len(tokens) - 1)))
        tokens = [t for i, t in enumerate(tokens) if i not in drop]
    elif kind == "insert":
        for _ in range(n):
            tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(donor))
    else:
        for i in rng.sample(range(len(tokens)), min(n, len(tokens))):
            tokens[i] = rng.choice(donor)
    return " ".join(tokens)


def build_corpus(bases: int, seed: int = 0, max_rate: float = 0.15) -> tuple[list[dict], list[dict]]:
    """(documents: doc_id, family, text, edit), (pairs within families: a, b, jaccard)."""
    rng = random.Random(seed)
    pool = real_documents()
    rng.shuffle(pool)
    base_texts = distinct(pool)[:bases]
    donor = [w for t in rng.sample(pool, min(300, len(pool))) for w in t.split()]
    docs: list[dict] = []
    for f, base in enumerate(base_texts):
        family = [{"doc_id": f"f{f:05d}-0", "family": f, "text": base, "edit": "base"}]
        for v in range(rng.choice((0, 0, 1, 2, 3, 4))):
            parent = family[0] if rng.random() < 0.67 else rng.choice(family)
            kind, rate = rng.choice(EDITS), rng.uniform(0.0, max_rate)
            text = edit(parent["text"], kind, rate, donor, rng)
            family.append(
                {"doc_id": f"f{f:05d}-{v + 1}", "family": f, "text": text, "edit": f"{kind}:{rate:.3f}"}
            )
        docs += family
    mh = MinHasher(ngram=5)
    sets = dict(zip((d["doc_id"] for d in docs), shingle_sets([d["text"] for d in docs], mh), strict=True))
    by_family: dict[int, list[str]] = defaultdict(list)
    for d in docs:
        by_family[d["family"]].append(d["doc_id"])
    pairs = [
        {"a": a, "b": b, "jaccard": jaccard(sets[a], sets[b])}
        for members in by_family.values()
        for a, b in combinations(members, 2)
    ]
    return docs, pairs


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def cluster_pairs(assignment: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for doc, cluster in assignment.items():
        groups[cluster].append(doc)
    return {_pair(a, b) for members in groups.values() for a, b in combinations(sorted(members), 2)}


def score(predicted: set, truth: set) -> dict[str, float]:
    tp = len(predicted & truth)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(truth) if truth else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "pairs": len(predicted)}


def stage_clusters(docs: list[dict], workdir: Path):
    """Run the dedup stage on the corpus as a Delta table: doc_id -> cluster_id, duplicate -> its
    representative, the stage's details, seconds."""
    from slm_curator import delta
    from slm_curator.config import load_config
    from slm_curator.pipeline import run_pipeline
    from slm_curator.spark import get_spark

    cfg = load_config(
        "local",
        [
            f"storage.root={workdir}",
            "tracking.enabled=false",
            "checks.enabled=false",
            "spark.show_progress=false",
            "dedup.where=",
            "dedup.text_column=text",
        ],
        conf_dir=ROOT / "conf",
    )
    spark = get_spark(cfg)
    rows = [(d["doc_id"], "bench", d["text"]) for d in docs]
    delta.write(
        spark.createDataFrame(rows, "doc_id string, source string, text string"),
        delta.table_ref(cfg.storage, "filtered"),
        "overwrite",
    )
    started = time.time()
    (summary,) = run_pipeline(cfg, stages=["dedup"], spark=spark)
    seconds = time.time() - started
    out = delta.read(spark, delta.table_ref(cfg.storage, "deduped")).select(
        "doc_id", "cluster_id", "duplicate_of"
    )
    rows = out.collect()
    clusters = {r["doc_id"]: r["cluster_id"] for r in rows}
    representative = {r["doc_id"]: r["duplicate_of"] for r in rows if r["duplicate_of"]}
    return clusters, representative, summary.details, seconds


def datasketch_pairs(ids, sets, num_perm=112, params=(14, 8)) -> set[tuple[str, str]]:
    """datasketch MinHashLSH on the same shingle hashes: every candidate pair it returns."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=num_perm, params=params)
    hashes = {}
    for doc, s in zip(ids, sets, strict=True):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([int(x).to_bytes(8, "little") for x in s])
        hashes[doc] = m
        lsh.insert(doc, m)
    pairs = set()
    for doc, m in hashes.items():
        pairs |= {_pair(doc, other) for other in lsh.query(m) if other != doc}
    return pairs


def spark_ml_pairs(docs: list[dict], spark) -> set[tuple[str, str]]:
    """Spark ML: binary HashingTF of the same 5-gram strings, MinHashLSH(14 tables), join at distance 0.2."""
    from pyspark.ml.feature import HashingTF, MinHashLSH
    from pyspark.sql import functions as F

    cfg = DedupConfig()
    rows = []
    lists = normalize_batch([d["text"] for d in docs], cfg.normalize)[1].to_pylist()
    for d, w in zip(docs, lists, strict=True):
        grams = [" ".join(w[i : i + 5]) for i in range(max(1, len(w) - 4))]
        rows.append((d["doc_id"], grams))
    frame = spark.createDataFrame(rows, "doc_id string, grams array<string>")
    tf = HashingTF(inputCol="grams", outputCol="features", numFeatures=1 << 20, binary=True).transform(frame)
    tf = tf.where(F.size("grams") > 0)
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=14, seed=1).fit(tf)
    joined = model.approxSimilarityJoin(tf, tf, 1 - THRESHOLD, distCol="d").where(
        F.col("datasetA.doc_id") < F.col("datasetB.doc_id")
    )
    return {(r[0], r[1]) for r in joined.select("datasetA.doc_id", "datasetB.doc_id").collect()}


def reference_clusters(ids, sets) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Single machine: datasketch LSH (14 x 8) candidates, exact Jaccard >= 0.8, union-find."""
    index = dict(zip(ids, sets, strict=True))
    candidates = datasketch_pairs(ids, sets)
    accepted = {p for p in candidates if jaccard(index[p[0]], index[p[1]]) >= THRESHOLD}
    roots = components(accepted)
    return {d: roots.get(d, d) for d in ids}, accepted


def explain(stage: dict[str, str], ref: dict[str, str], index, ref_edges) -> list[dict]:
    """Every document whose cluster differs, with the pairs behind the difference and their Jaccard."""

    def members(assign):
        groups = defaultdict(set)
        for d, c in assign.items():
            groups[c].add(d)
        return {d: groups[c] for d, c in assign.items()}

    ours, theirs = members(stage), members(ref)
    out = []
    for doc in sorted(stage):
        if ours[doc] == theirs[doc]:
            continue
        only_ours = sorted(ours[doc] - theirs[doc])
        only_ref = sorted(theirs[doc] - ours[doc])
        pairs = [(o, round(jaccard(index[doc], index[o]), 3)) for o in only_ours + only_ref][:6]
        out.append(
            {
                "doc_id": doc,
                "with_stage_only": only_ours[:5],
                "with_reference_only": only_ref[:5],
                "jaccard": pairs,
            }
        )
    return out


def miss_probability(j: float, bands: int = 14, rows: int = 8) -> float:
    """Chance that a pair of Jaccard j shares no band (the LSH S-curve's complement)."""
    return (1 - j**rows) ** bands


def stage_buckets(ids, texts) -> dict[str, set[tuple[int, int]]]:
    """doc_id -> its (band, key) buckets under the stage's own MinHasher and default config."""
    cfg = DedupConfig()
    mh = MinHasher(cfg.num_perm, cfg.bands, cfg.rows, cfg.ngram, cfg.seed)
    keys = mh.band_keys(mh.signatures(mh.shingles(normalize_batch(texts, cfg.normalize)[1])))
    return {d: {(b, int(k)) for b, k in enumerate(row)} for d, row in zip(ids, keys, strict=True)}


def explain_pairs(stage_pairs, ref_pairs, index, buckets) -> dict:
    """Every pair one clustering joins and the other does not, with its cause.

    A pair at Jaccard >= 0.8 is direct: the side without it missed it, because its LSH bands never
    collided (a chance the S-curve gives) or, for the stage only, because the pair collided only in
    buckets whose star center was not similar to both, so both star edges failed verification. A
    pair below 0.8 is transitive: one side joined it through a chain of direct pairs, so its cause
    is one of the direct pairs.
    """
    out = {"direct": [], "transitive": 0}
    for side, pairs in (("stage only", stage_pairs - ref_pairs), ("reference only", ref_pairs - stage_pairs)):
        for a, b in sorted(pairs):
            j = jaccard(index[a], index[b])
            if j < THRESHOLD:
                out["transitive"] += 1
                continue
            if side == "stage only":
                cause = "datasketch LSH: no shared band"
            elif buckets[a] & buckets[b]:
                cause = "stage: shared a band, but only in buckets whose star center failed verification"
            else:
                cause = "stage LSH: no shared band"
            out["direct"].append(
                {
                    "pair": [a, b],
                    "jaccard": round(j, 4),
                    "found by": side,
                    "cause": cause,
                    "miss_probability": round(miss_probability(j), 4),
                }
            )
    counts: dict[str, int] = defaultdict(int)
    for d in out["direct"]:
        counts[d["cause"]] += 1
    out["direct_by_cause"] = dict(counts)
    return out


def _cross_family_truth(predicted_sets, docs, index, truth):
    """Pairs predicted across families: added to the truth when their exact Jaccard is >= 0.8."""
    family = {d["doc_id"]: d["family"] for d in docs}
    extra = set()
    for pairs in predicted_sets:
        for a, b in pairs:
            if family[a] != family[b] and jaccard(index[a], index[b]) >= THRESHOLD:
                extra.add((a, b))
    return truth | extra, len(extra)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bases", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=str(ROOT / "benchmarks" / ".work" / "dedup_accuracy"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dedup_accuracy.json"))
    args = ap.parse_args(argv)

    t0 = time.time()
    docs, pairs = build_corpus(args.bases, args.seed)
    ids = [d["doc_id"] for d in docs]
    sets = shingle_sets([d["text"] for d in docs], MinHasher(ngram=5))
    index = dict(zip(ids, sets, strict=True))
    truth = {_pair(p["a"], p["b"]) for p in pairs if p["jaccard"] >= THRESHOLD}
    print(
        f"corpus: {len(docs)} documents, {len({d['family'] for d in docs})} families, "
        f"{len(pairs)} within-family pairs, {len(truth)} at Jaccard >= {THRESHOLD} ({time.time() - t0:.0f}s)"
    )

    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    stage, representative, details, stage_seconds = stage_clusters(docs, Path(args.workdir))
    from slm_curator.config import load_config
    from slm_curator.spark import get_spark

    spark = get_spark(load_config("local", [], conf_dir=ROOT / "conf"))
    predicted = {
        "slm-curator dedup stage (clusters)": cluster_pairs(stage),
        "datasketch MinHashLSH 14x8 (candidates)": datasketch_pairs(ids, sets),
        "datasketch MinHashLSH threshold=0.8 (candidates)": datasketch_pairs(ids, sets, 128, None),
        "Spark ML MinHashLSH 14 tables (join at 0.2)": spark_ml_pairs(docs, spark),
    }
    ds = predicted["datasketch MinHashLSH 14x8 (candidates)"]
    predicted["datasketch MinHashLSH 14x8 + exact Jaccard"] = {
        p for p in ds if jaccard(index[p[0]], index[p[1]]) >= THRESHOLD
    }
    truth, cross = _cross_family_truth(predicted.values(), docs, index, truth)

    bands = {}
    for low, high in ((0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.01)):
        band = {_pair(p["a"], p["b"]) for p in pairs if low <= p["jaccard"] < high}
        bands[f"[{low}, {min(high, 1.0)})"] = {
            name: round(len(found & band) / len(band), 4) if band else None
            for name, found in predicted.items()
        }
    ref, ref_edges = reference_clusters(ids, sets)
    predicted["reference clusters (datasketch 14x8 + exact Jaccard + union-find)"] = cluster_pairs(ref)
    # What connected components aim at: pairs linked by a chain of pairs at >= 0.8.
    roots = components(truth)
    closure = cluster_pairs({d: roots.get(d, d) for d in ids})
    results = {
        name: {"pairs_at_0.8": score(found, truth), "chains_at_0.8": score(found, closure)}
        for name, found in predicted.items()
    }
    diffs = explain(stage, ref, index, ref_edges)
    pair_diffs = explain_pairs(
        predicted["slm-curator dedup stage (clusters)"],
        cluster_pairs(ref),
        index,
        stage_buckets(ids, [d["text"] for d in docs]),
    )
    to_rep = [jaccard(index[d], index[r]) for d, r in representative.items()]
    drops = {
        "duplicates": len(to_rep),
        "at_0.8_to_representative": sum(j >= THRESHOLD for j in to_rep) / max(1, len(to_rep)),
        "min_jaccard_to_representative": round(min(to_rep), 4) if to_rep else None,
    }
    expected_misses = sum(miss_probability(jaccard(index[a], index[b])) for a, b in truth)
    print(f"\n{'':<74} {'pairs at >= 0.8':^26}   {'chains of pairs at >= 0.8':^26}")
    print(
        f"{'method':<66} {'pairs':>7} {'precision':>9} {'recall':>7} {'F1':>7}   {'precision':>9} {'recall':>7} {'F1':>7}"
    )
    for name, r in results.items():
        a, c = r["pairs_at_0.8"], r["chains_at_0.8"]
        print(
            f"{name:<66} {a['pairs']:>7} {a['precision']:>9.4f} {a['recall']:>7.4f} {a['f1']:>7.4f}"
            f"   {c['precision']:>9.4f} {c['recall']:>7.4f} {c['f1']:>7.4f}"
        )
    print(
        f"\nstage duplicates at Jaccard >= {THRESHOLD} to their representative: "
        f"{drops['at_0.8_to_representative']:.4f} of {drops['duplicates']} (lowest {drops['min_jaccard_to_representative']})"
    )
    print(f"expected true pairs sharing no band (14 x 8 S-curve): {expected_misses:.1f} of {len(truth)}")
    print("\nrecall by true Jaccard, columns: " + " | ".join(next(iter(bands.values()))))
    for band, row in bands.items():
        print(f"  {band:<14} " + "  ".join(f"{v if v is not None else '-'}" for v in row.values()))
    print(
        f"\nstage vs reference (datasketch 14x8 + exact Jaccard + union-find): {len(diffs)} documents differ;"
        f" pairs joined by one side only: {len(pair_diffs['direct'])} direct (>= {THRESHOLD}),"
        f" {pair_diffs['transitive']} transitive (< {THRESHOLD}, through a direct one)"
    )
    for cause, n in sorted(pair_diffs["direct_by_cause"].items()):
        print(f"  {n:>4}  {cause}")
    for d in pair_diffs["direct"]:
        print("   ", json.dumps(d))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "corpus": {
                    "documents": len(docs),
                    "families": len({d["family"] for d in docs}),
                    "pairs": len(pairs),
                    "duplicate_pairs": len(truth),
                    "cross_family_duplicates": cross,
                    "seed": args.seed,
                    "edits": sorted({d["edit"].split(":")[0] for d in docs}),
                },
                "threshold": THRESHOLD,
                "results": results,
                "recall_by_jaccard": bands,
                "stage": {"details": details, "seconds": stage_seconds},
                "stage_duplicates": drops,
                "expected_pairs_sharing_no_band": expected_misses,
                "stage_vs_reference": {
                    "documents_differing": len(diffs),
                    "pairs": pair_diffs,
                    "documents": diffs,
                },
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
