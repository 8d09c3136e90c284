"""Score-stage throughput: the stage's pandas UDF against a naive transformers `pipeline` baseline.

    .venv/bin/python benchmarks/score.py [--docs 400] [--out benchmarks/results/score.json]

Documents: the first N of ../shared/data/quality/fineweb_edu_llama3_scored_3k.jsonl.gz (real web pages,
mixed lengths). Every arm embeds the same documents at the same truncation (the first 256 tokens, one
chunk), applies the same packaged head, and is timed after one warm-up batch:
  - baseline: transformers `pipeline("feature-extraction")`, fixed batches of 16 in input order,
    mean pooling and the head in numpy (what a first version of a scorer looks like);
  - encoder (torch / onnx): the stage's Encoder outside Spark, chunks sorted by length and packed by
    token count; both also with `score.precision=int8` (torch: dynamic int8 on the widening Linear
    layers; onnx: every projection, per-channel weights; one chunk a pass), whose scores are compared
    with torch float32's (Spearman, largest absolute difference);
  - stage UDF (torch / onnx, float32 / int8): the score stage's UDF over a DataFrame in Spark local
    mode, written to a no-op sink: the Spark overhead against the pure encoder shows here;
  - stage UDF, whole documents: the default 8 chunks per document (more tokens, other numbers);
  - words model, whole documents (`--words`, the Spark 3.5 venv where Spark NLP is installed): the
    package's words-chunked model on the stage's torch and ONNX UDFs and on Spark NLP (score.backend
    sparknlp: E5Embeddings in the JVM, head in SQL), same documents and cores, with the scores'
    agreement against torch's.
Each arm runs `--repeats` times and reports its median time (a shared 2-core VM is noisy: one run of
an arm can be 30% off the next). Throughput is documents and real (unpadded) tokens per second; on CUDA also the achieved fraction of
the GPU's bf16 peak, from the encoder's FLOPs per token. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "quality" / "fineweb_edu_llama3_scored_3k.jsonl.gz"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "score.json"
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "T4": 65.0}


def load_docs(n: int) -> list[str]:
    if not DATA.exists():
        sys.exit(f"error: {DATA} not found (benchmarks need ../shared/data)")
    with gzip.open(DATA, "rt") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f, strict=False)]


def median_time(run, repeats: int):
    """Median seconds of `run()` over `repeats` calls, and the last call's result."""
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), out


def baseline(docs, model, folder, device: str, repeats: int) -> tuple[float, np.ndarray]:
    from transformers import pipeline

    extractor = pipeline(
        "feature-extraction", model=str(folder), tokenizer=str(folder), device=device, framework="pt"
    )

    # The pipeline's own `truncation`/`max_length` arguments do not reach its tokenizer (it cuts at
    # the model's 512), so they go through tokenize_kwargs; and an item of a padded batch comes back
    # with the batch's padding, so each document is averaged over its own tokens only.
    cut = {"truncation": True, "max_length": model.encoder.max_tokens}

    def run(batch):
        out = extractor(batch, batch_size=16, tokenize_kwargs=cut)
        lengths = [len(ids) for ids in extractor.tokenizer(batch, **cut)["input_ids"]]
        vectors = np.stack([np.asarray(o[0])[:n].mean(axis=0) for o, n in zip(out, lengths, strict=True)])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return model.head.predict(model.inputs(vectors, batch))

    run(docs[:16])
    return median_time(lambda: run(docs), repeats)


def encoder_arm(docs, model, backend, device, threads, repeats, precision="float32"):
    from slm_curator.quality.encoder import Encoder

    spec = dataclasses.replace(model.encoder, max_chunks=1)
    enc = Encoder(spec, backend=backend, device=device, threads=threads, precision=precision)
    enc.embed(docs[:16])
    one = dataclasses.replace(model, encoder=spec)
    seconds, scores = median_time(lambda: one.score(enc, docs), repeats)
    return seconds, scores, enc


def stage_arm(spark, docs, cfg, resolved, chunks: int, repeats: int) -> float:
    from slm_curator.quality.score import add_scores

    model = dataclasses.replace(
        resolved.model, encoder=dataclasses.replace(resolved.model.encoder, max_chunks=chunks)
    )
    resolved = dataclasses.replace(resolved, model=model)
    frame = spark.createDataFrame([(f"d{i}", t) for i, t in enumerate(docs)], "doc_id string, text string")
    frame = frame.repartition(spark.sparkContext.defaultParallelism, "doc_id").cache()
    frame.count()
    add_scores(frame.limit(32), "text", resolved, cfg, 1).write.format("noop").mode(
        "overwrite"
    ).save()  # warm
    seconds, _ = median_time(
        lambda: add_scores(frame, "text", resolved, cfg, 1).write.format("noop").mode("overwrite").save(),
        repeats,
    )
    frame.unpersist()
    return seconds


def words_arms(args) -> int:
    """The words-chunked default model on the stage's Python UDFs and on Spark NLP (Spark 3.5 venv)."""
    import importlib.util

    from slm_curator.config import load_config
    from slm_curator.quality.model import resolve_model
    from slm_curator.quality.score import add_scores
    from slm_curator.spark import get_spark

    if importlib.util.find_spec("sparknlp") is None:
        sys.exit(
            "error: --words needs spark-nlp (the Spark 3.5 venv: SLM_SPARK_LINE=3.5 scripts/bootstrap.sh dev,quality,nlp)"
        )
    docs = load_docs(args.docs)
    resolved = resolve_model("", words=True)
    sets = ["spark.show_progress=false", "tracking.enabled=false", "score.backend=sparknlp"]
    cfg = load_config("local", sets, str(ROOT / "conf"))
    spark = get_spark(cfg, app_name="benchmark-score-words")
    enc = resolved.model.load_encoder("torch", "cpu")
    tokens = sum(len(p) for p in enc.chunks(docs)[0])
    frame = spark.createDataFrame([(f"d{i}", t) for i, t in enumerate(docs)], "doc_id string, text string")
    frame = frame.repartition(spark.sparkContext.defaultParallelism, "doc_id").cache()
    frame.count()
    rows, scores = [], {}
    for backend in ("torch", "onnx", "sparknlp"):
        sc = dataclasses.replace(cfg.score, backend=backend, precision="float32", threads=1)
        scored = add_scores(frame, "text", resolved, sc, 1)
        scored.limit(32).write.format("noop").mode("overwrite").save()  # warm: model load, jars, export
        sink = scored.write.format("noop").mode("overwrite")
        seconds, _ = median_time(sink.save, args.repeats)
        got = {r["doc_id"]: r["quality_score"] for r in scored.select("doc_id", "quality_score").collect()}
        scores[backend] = np.array([got[f"d{i}"] for i in range(len(docs))])
        rows.append(
            {
                "arm": f"stage {backend}, words model",
                "seconds": seconds,
                "docs_per_s": len(docs) / seconds,
                "tokens_per_s": tokens / seconds,
            }
        )
        print(
            f"{rows[-1]['arm']:<32} {seconds:8.1f} s {len(docs) / seconds:8.1f} docs/s {tokens / seconds:9.0f} tok/s",
            flush=True,
        )
    from slm_curator.quality.metrics import spearman

    agreement = {
        b: {
            "spearman": float(spearman(scores["torch"], scores[b])),
            "max_abs_difference": float(np.abs(scores["torch"] - scores[b]).max()),
        }
        for b in ("onnx", "sparknlp")
    }
    for b, d in agreement.items():
        print(f"{b} vs torch: Spearman {d['spearman']:.6f}, max |difference| {d['max_abs_difference']:.1e}")
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "spark": spark.version,
        "master": spark.sparkContext.master,
        "documents": len(docs),
        "source": str(DATA.relative_to(ROOT.parent)),
        "model": resolved.uri,
        "repeats": args.repeats,
        "arms": rows,
        "score_agreement_with_torch": agreement,
        "speedup_vs_torch": {r["arm"]: r["docs_per_s"] / rows[0]["docs_per_s"] for r in rows[1:]},
    }
    spark.stop()
    out = Path(args.out)
    if out == DEFAULT_OUT:
        out = DEFAULT_OUT.with_name("score_spark_nlp.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def cpu_features() -> list[str]:
    """The vector extensions that decide which CPU arm wins (int8 gains need VNNI)."""
    try:
        flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return []
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    have = set(flags.split(":", 1)[1].split())
    return [f for f in wanted if f in have]


def flops_per_token(folder: Path, seq: int) -> float:
    config = json.loads((folder / "config.json").read_text())
    d, layers, ff = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    dense = layers * (4 * d * d + 2 * d * ff)  # attention projections + feed-forward, per token
    attention = layers * 2 * seq * d  # scores and weighted values
    return 2.0 * (dense + attention)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs per arm; the median is reported")
    parser.add_argument(
        "--words", action="store_true", help="only the words-model arms: Python UDFs against Spark NLP"
    )
    args = parser.parse_args()
    if args.words:
        return words_arms(args)
    import torch

    from slm_curator.config import load_config
    from slm_curator.quality.encoder import resolve_encoder_path
    from slm_curator.quality.metrics import spearman
    from slm_curator.quality.model import resolve_model
    from slm_curator.spark import get_spark

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    threads = int(os.environ.get("SLM_SCORE_THREADS", "0")) or (os.cpu_count() or 1)
    docs = load_docs(args.docs)
    resolved = resolve_model("")
    folder = resolve_encoder_path(resolved.model.encoder.location)
    rows = []

    def add(arm, seconds, tokens, note=""):
        rows.append(
            {
                "arm": arm,
                "seconds": seconds,
                "docs_per_s": len(docs) / seconds,
                "tokens_per_s": tokens / seconds,
                "note": note,
            }
        )
        print(
            f"{arm:<36} {seconds:8.1f} s {len(docs) / seconds:9.1f} docs/s {tokens / seconds:10.0f} tok/s  {note}",
            flush=True,
        )

    torch.set_num_threads(threads)
    reps = args.repeats
    t_enc, s_enc, enc = encoder_arm(docs, resolved.model, "torch", device, threads, reps)
    tokens_1 = sum(len(p) for p in enc.chunks(docs)[0])
    if not args.skip_baseline:
        t_base, s_base = baseline(docs, resolved.model, folder, device, reps)
        add("baseline: transformers pipeline", t_base, tokens_1, "fixed batches of 16, input order")
        agree = float(np.abs(s_base - s_enc).max())
    add(
        f"encoder torch ({device})",
        t_enc,
        tokens_1,
        f"padding {enc.tokens_read / enc.tokens_padded:.0%} real",
    )
    agreement = {}
    for backend, precision in [] if cuda else [("torch", "int8"), ("onnx", "float32"), ("onnx", "int8")]:
        t_arm, s_arm, _ = encoder_arm(docs, resolved.model, backend, "cpu", threads, reps, precision)
        key = backend if precision == "float32" else f"{backend} {precision}"
        agreement[key] = {
            "spearman": float(spearman(s_enc, s_arm)),
            "max_abs_difference": float(np.abs(s_enc - s_arm).max()),
            "p99_abs_difference": float(np.quantile(np.abs(s_enc - s_arm), 0.99)),
        }
        add(
            f"encoder {key} (cpu)",
            t_arm,
            tokens_1,
            "scores vs torch float32: Spearman {spearman:.4f}, max |diff| {max_abs_difference:.3f}".format(
                **agreement[key]
            ),
        )
    cfg = load_config("local", ["spark.show_progress=false", "tracking.enabled=false"], str(ROOT / "conf"))
    spark = get_spark(cfg, app_name="benchmark-score")
    arms = [("torch", "float32")] + (
        [] if cuda else [("torch", "int8"), ("onnx", "float32"), ("onnx", "int8")]
    )
    for backend, precision in arms:
        sc = dataclasses.replace(
            cfg.score, backend=backend, device=device, precision=precision, threads=1 if not cuda else 0
        )
        t = stage_arm(spark, docs, sc, resolved, 1, reps)
        label = backend + (f" {precision}" if precision != "float32" else "")
        if (backend, precision) == ("onnx", "float32"):
            label += " (score.backend auto, the CPU default)"
        add(
            f"stage UDF {label}, first 256 tokens",
            t,
            tokens_1,
            f"{spark.sparkContext.master}, {spark.sparkContext.defaultParallelism} partitions, 1 thread/task",
        )
    full = resolved.model.encoder
    enc.spec = full  # the tokenizer alone counts the whole-document chunks
    tokens_full = sum(len(p) for p in enc.chunks(docs)[0])
    for backend, precision in [("torch", "float32")] + (
        [] if cuda else [("onnx", "float32"), ("onnx", "int8")]
    ):
        sc = dataclasses.replace(
            cfg.score, backend=backend, device=device, precision=precision, threads=1 if not cuda else 0
        )
        t_full = stage_arm(spark, docs, sc, resolved, full.max_chunks, 1)
        label = backend + (f" {precision}" if precision != "float32" else "")
        add(f"stage UDF {label}, whole documents ({full.max_chunks} chunks)", t_full, tokens_full)
    spark.stop()

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name(0)}" if cuda else ""),
        "cpu_features": cpu_features(),
        "documents": len(docs),
        "source": str(DATA.relative_to(ROOT.parent)),
        "repeats": reps,
        "arms": rows,
        "score_agreement_with_float32": agreement,
    }
    if not args.skip_baseline:
        base = rows[0]["docs_per_s"]
        result["speedup_vs_baseline"] = {r["arm"]: r["docs_per_s"] / base for r in rows[1:]}
        result["max_abs_score_difference_baseline_vs_encoder"] = agree
        print("\nspeed-up over the baseline (same documents, same truncation):")
        for arm, x in result["speedup_vs_baseline"].items():
            print(f"  {arm:<46} {x:5.2f}x")
        print(f"max |score difference| baseline vs encoder: {agree:.2e}")
    if cuda:
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if peak:
            fpt = flops_per_token(folder, 256)
            result["gpu_peak_fraction"] = {r["arm"]: r["tokens_per_s"] * fpt / (peak * 1e12) for r in rows}
            for arm, frac in result["gpu_peak_fraction"].items():
                print(f"  {arm:<46} {frac:.2%} of {name} bf16 peak")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
