"""Speed of the dedup stage against Spark ML MinHashLSH and datasketch, and how it grows with size.

Corpus: documents of ~4 KB spliced from real paragraphs of ../shared/data (web pages, FineWeb-Edu,
books, Wikipedia: see dedup_data.real_documents), generated inside Spark so the driver holds none of
it; 3% of documents are exact copies and 10% near copies (2% of words substituted) of an earlier one.

Timed, on the same machine and cores, each from a Delta input table to its result written:
- the dedup stage (`slm-curator dedup`: signatures, LSH, verification, components, `deduped`);
- Spark ML: binary HashingTF of the same 5-grams, MinHashLSH with 14 tables, approxSimilarityJoin at
  Jaccard distance 0.2, pairs written as Parquet (the baseline most Spark users reach for); cancelled
  after --spark-ml-limit seconds, when its time is a lower bound;
- datasketch on one core: MinHash (112 permutations) of every document, LSH insert and query (no I/O).
Reported as documents per second per core; driver memory is the Python driver's resident size and
the driver JVM's used heap after a GC, taken after each size (flat: nothing grows with the corpus).

    python benchmarks/dedup.py [--sizes 10000,50000,200000] [--spark-ml-sizes 10000,50000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pandas as pd  # noqa: E402
from dedup_data import real_documents  # noqa: E402

from slm_curator import delta  # noqa: E402
from slm_curator.config import DedupConfig, load_config  # noqa: E402
from slm_curator.text.normalize import normalize_batch  # noqa: E402


def _rss_mb() -> float:
    """The Python driver's resident size now (Linux /proc), in MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _jvm_heap_mb(spark) -> float:
    """The driver JVM's used heap after a full GC, in MB (local mode: driver and executors share it)."""
    runtime = spark._jvm.java.lang.Runtime.getRuntime()
    spark._jvm.java.lang.System.gc()
    return (runtime.totalMemory() - runtime.freeMemory()) / 2**20


def paragraphs() -> list[str]:
    out = []
    for text in real_documents():
        out += [p.strip() for p in text.split("\n") if len(p.strip()) >= 60]
    return out


def corpus(spark, n: int, pool: list[str], seed: int = 0, partitions: int = 16):
    """n documents of ~4 KB (doc_id, source, text), built by Spark tasks from the paragraph pool."""

    def build(batches):
        for batch in batches:
            texts, ids = [], []
            for i in batch["id"]:
                rng = random.Random(seed * 1_000_003 + int(i))
                kind = rng.random()
                if kind < 0.13 and i > 0:  # a copy of an earlier document
                    j = rng.randrange(int(i))
                    src = random.Random(seed * 1_000_003 + j)
                    src.random()
                    text = _doc(src)
                    if kind >= 0.03:
                        tokens = text.split(" ")
                        for k in rng.sample(range(len(tokens)), len(tokens) // 50):
                            tokens[k] = rng.choice(pool).split(" ")[0]
                        text = " ".join(tokens)
                else:
                    text = _doc(rng)
                ids.append(f"doc{int(i):08d}")
                texts.append(text)
            yield pd.DataFrame({"doc_id": ids, "source": "bench", "text": texts})

    def _doc(rng):
        parts, size = [], 0
        while size < 4000:
            p = pool[rng.randrange(len(pool))]
            parts.append(p)
            size += len(p) + 1
        return "\n".join(parts)

    return spark.range(n, numPartitions=partitions).mapInPandas(
        build, "doc_id string, source string, text string"
    )


def time_stage(cfg, spark) -> float:
    from slm_curator.pipeline import run_pipeline

    started = time.time()
    run_pipeline(cfg, stages=["dedup"], spark=spark)
    return time.time() - started


def time_spark_ml(spark, table, out: Path, limit: float) -> tuple[float, bool]:
    """(seconds, finished): the job is cancelled after `limit` seconds, which then bound its time below.

    Spark ML's MinHashLSH is OR-only (one minimum per table), so every pair that shares any one of 14
    minima is a candidate: on pages that share paragraphs the join grows with the square of the corpus.
    """
    import threading

    from pyspark.ml.feature import HashingTF, MinHashLSH
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType

    norm = DedupConfig().normalize

    @F.pandas_udf(ArrayType(StringType()))
    def grams(texts: pd.Series) -> pd.Series:
        lists = normalize_batch(texts.tolist(), norm)[1].to_pylist()
        return pd.Series([[" ".join(w[i : i + 5]) for i in range(max(1, len(w) - 4))] for w in lists])

    sc = spark.sparkContext
    sc.setJobGroup("spark-ml-baseline", "Spark ML MinHashLSH baseline", interruptOnCancel=True)
    timer = threading.Timer(limit, lambda: sc.cancelJobGroup("spark-ml-baseline"))
    started = time.time()
    timer.start()
    frame = table.select("doc_id", grams("text").alias("grams"))
    tf = HashingTF(inputCol="grams", outputCol="features", numFeatures=1 << 20, binary=True).transform(frame)
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=14, seed=1).fit(tf)
    pairs = model.approxSimilarityJoin(tf, tf, 0.2, distCol="distance").where(
        F.col("datasetA.doc_id") < F.col("datasetB.doc_id")
    )
    try:
        pairs.select(
            F.col("datasetA.doc_id").alias("a"), F.col("datasetB.doc_id").alias("b"), "distance"
        ).write.mode("overwrite").parquet(str(out))
        finished = True
    except Exception as err:  # the cancelled job
        if time.time() - started < limit:
            raise
        print(f"Spark ML: cancelled after {limit:.0f}s ({type(err).__name__})", flush=True)
        finished = False
    finally:
        timer.cancel()
        sc.setLocalProperty("spark.jobGroup.id", None)
    return time.time() - started, finished


def time_datasketch(texts: list[str]) -> float:
    from datasketch import MinHash, MinHashLSH

    norm = DedupConfig().normalize
    started = time.time()
    lsh = MinHashLSH(threshold=0.8, num_perm=112, params=(14, 8))
    hashes = []
    lists = []  # the stage's normalisation, in its batches: datasketch is timed on the same words
    for start in range(0, len(texts), 500):  # words joined by one space: a split gives them back
        lists += [t.split(" ") if t else [] for t in normalize_batch(texts[start : start + 500], norm)[0]]
    for i, w in enumerate(lists):
        m = MinHash(num_perm=112, seed=1)
        m.update_batch([" ".join(w[k : k + 5]).encode() for k in range(max(1, len(w) - 4))])
        lsh.insert(str(i), m)
        hashes.append(m)
    for m in hashes:
        lsh.query(m)
    return time.time() - started


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,50000,200000")
    ap.add_argument("--spark-ml-sizes", default="10000,50000")
    ap.add_argument("--datasketch-size", type=int, default=10000)
    ap.add_argument(
        "--spark-ml-limit", type=float, default=480, help="seconds before the baseline is cancelled"
    )
    ap.add_argument("--workdir", default=str(ROOT / "benchmarks" / ".work" / "dedup_speed"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dedup.json"))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    ml_sizes = [int(s) for s in args.spark_ml_sizes.split(",") if s]
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)

    from slm_curator.spark import get_spark

    base = [
        f"storage.root={work}",
        "tracking.enabled=false",
        "checks.enabled=false",
        "spark.show_progress=false",
        "dedup.where=",
        "dedup.text_column=text",
    ]
    cfg = load_config("local", base, conf_dir=ROOT / "conf")
    spark = get_spark(cfg)
    master = spark.sparkContext.master  # local[2]: the cores every method gets
    cores = int(master[6:-1]) if master.startswith("local[") and master[6:-1].isdigit() else os.cpu_count()
    pool = paragraphs()
    rows, rss, heap = [], [], []
    if args.datasketch_size:
        # First, on its own corpus table: no Spark job runs beside it (a cancelled Spark ML job's tasks
        # can outlive the cancel). Its texts are freed before the stage's driver memory is read.
        n = args.datasketch_size
        ds_ref = delta.table_ref(
            load_config(
                "local", [*base, f"storage.root={work / 'datasketch'}"], conf_dir=ROOT / "conf"
            ).storage,
            "filtered",
        )
        delta.write(corpus(spark, n, pool), ds_ref, "overwrite")
        texts = [r["text"] for r in delta.read(spark, ds_ref).select("text").toLocalIterator()]
        ds = time_datasketch(texts)
        del texts
        gc.collect()
        rows.append(
            {"method": "datasketch (1 core)", "documents": n, "seconds": ds, "docs_per_s_per_core": n / ds}
        )
        print(f"datasketch       {n:>7} docs {ds:8.1f}s {n / ds:8.1f} docs/s/core", flush=True)

    for n in sizes:
        cfg_n = load_config("local", [*base, f"storage.root={work / str(n)}"], conf_dir=ROOT / "conf")
        ref = delta.table_ref(cfg_n.storage, "filtered")
        delta.write(corpus(spark, n, pool), ref, "overwrite")
        seconds = time_stage(cfg_n, spark)
        rss.append(_rss_mb())
        heap.append(_jvm_heap_mb(spark))
        rows.append(
            {
                "method": "dedup stage",
                "documents": n,
                "seconds": seconds,
                "docs_per_s_per_core": n / seconds / cores,
            }
        )
        print(
            f"dedup stage      {n:>7} docs {seconds:8.1f}s {n / seconds / cores:8.1f} docs/s/core  "
            f"driver RSS {rss[-1]:.0f} MB, JVM heap {heap[-1]:.0f} MB",
            flush=True,
        )
        if n in ml_sizes:
            table = delta.read(spark, ref)
            ml, finished = time_spark_ml(spark, table, work / f"ml-{n}", args.spark_ml_limit)
            rows.append(
                {
                    "method": "Spark ML MinHashLSH",
                    "documents": n,
                    "seconds": ml,
                    "docs_per_s_per_core": n / ml / cores,
                    "finished": finished,
                }
            )
            bound = "" if finished else " (cancelled: at most)"
            print(
                f"Spark ML         {n:>7} docs {ml:8.1f}s {n / ml / cores:8.1f} docs/s/core{bound}",
                flush=True,
            )

    def rate(method, n):
        return next(
            (r["docs_per_s_per_core"] for r in rows if r["method"] == method and r["documents"] == n), None
        )

    def secs(method, n):
        return next((r["seconds"] for r in rows if r["method"] == method and r["documents"] == n), None)

    ratios = {}
    for n in ml_sizes:
        if rate("dedup stage", n) and rate("Spark ML MinHashLSH", n):
            done = next(
                r["finished"] for r in rows if r["method"] == "Spark ML MinHashLSH" and r["documents"] == n
            )
            key = f"stage / Spark ML at {n}" + ("" if done else " (at least: Spark ML cancelled)")
            ratios[key] = rate("dedup stage", n) / rate("Spark ML MinHashLSH", n)
    ds_rate = rate("datasketch (1 core)", args.datasketch_size)
    if ds_rate:
        for n in sizes:
            ratios[f"stage at {n} / datasketch, per core"] = rate("dedup stage", n) / ds_rate
    if secs("dedup stage", 200000) and secs("dedup stage", 50000):
        ratios["time(200k) / time(50k)"] = secs("dedup stage", 200000) / secs("dedup stage", 50000)
    print(f"\n{'method':<22} {'documents':>9} {'seconds':>8} {'docs/s/core':>12}")
    for r in rows:
        mark = "" if r.get("finished", True) else "  cancelled: time at least, rate at most"
        print(
            f"{r['method']:<22} {r['documents']:>9} {r['seconds']:>8.1f} {r['docs_per_s_per_core']:>12.1f}{mark}"
        )
    print()
    for k, v in ratios.items():
        print(f"{k:<40} {v:6.2f}")
    print(f"driver RSS after each size (MB): {', '.join(f'{x:.0f}' for x in rss)}")
    print(f"driver JVM heap after each size (MB): {', '.join(f'{x:.0f}' for x in heap)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "cores": cores,
                "rows": rows,
                "ratios": ratios,
                "driver_rss_mb": dict(zip(map(str, sizes), rss, strict=True)),
                "driver_jvm_heap_mb": dict(zip(map(str, sizes), heap, strict=True)),
                "machine": os.uname().nodename,
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
