"""The packaged quality model on label sets it was not trained on, against length and the filters.

    .venv/bin/python benchmarks/quality_accuracy.py [--out benchmarks/results/quality_accuracy.json]

Sets (all under ../shared/data/quality and web; none is in the default model's training data):
  - fineweb_edu_llm_150: 150 FineWeb-Edu documents scored 0-5 by another LLM with the same prompt
    (an independent annotator): Spearman, and AUC of score >= 3;
  - eli5_validity: 1,038 human ELI5 answers with a human validity judgement (the only human labels
    here; about answers, not web pages): AUC of valid;
  - reference_vs_web: AlpacaEval GPT-4 answers and valid ELI5 answers (positives) against the C4
    sample (negatives), DCLM's framing: AUC.
Each is reported for the model, for document length alone (words), for the filter stage's default
`keep` (a 0/1 score), and for the mean of the model's and length's ranks. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def label_sets() -> dict[str, tuple[list[str], np.ndarray, str]]:
    if not SHARED.exists():
        sys.exit(f"error: {SHARED} not found (benchmarks need ../shared/data)")
    csv.field_size_limit(1 << 30)
    with open(SHARED / "quality" / "fineweb_edu_llm_scored_150.csv", newline="") as f:
        llm150 = [r for r in csv.DictReader(f) if r.get("score") not in (None, "")]
    eli5 = [r for r in jsonl(SHARED / "quality" / "eli5_answers.jsonl.gz") if r.get("is_valid") is not None]
    alpaca = jsonl(SHARED / "quality" / "alpaca_eval_gpt4_turbo_outputs.jsonl.gz")
    c4 = jsonl(SHARED / "web" / "c4_en_sample_1000.jsonl.gz")
    positives = [r["text"] for r in alpaca] + [r["text"] for r in eli5 if r["is_valid"]]
    return {
        "fineweb_edu_llm_150": (
            [r["text"] for r in llm150],
            np.array([float(r["score"]) for r in llm150]),
            "graded",
        ),
        "eli5_validity": (
            [r["text"] for r in eli5],
            np.array([float(bool(r["is_valid"])) for r in eli5]),
            "binary",
        ),
        "reference_vs_web": (
            positives + [r["text"] for r in c4],
            np.r_[np.ones(len(positives)), np.zeros(len(c4))],
            "binary",
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality_accuracy.json"))
    args = parser.parse_args()
    from slm_curator.config import FilterConfig
    from slm_curator.filters.document import Filters
    from slm_curator.quality.metrics import auc, spearman
    from slm_curator.quality.model import resolve_model

    resolved = resolve_model("")
    encoder = resolved.model.load_encoder(backend="torch", device="auto")
    filters = Filters(FilterConfig())
    results, started = {}, time.time()
    print(f"{'set':<22} {'n':>5} {'scorer':<22} {'spearman':>9} {'auc':>7}")
    for name, (texts, labels, kind) in label_sets().items():
        scores = resolved.model.score(encoder, texts)
        length = np.array([len(t.split()) for t in texts], dtype=float)
        keep = np.array([float(filters.analyze(t).keep) for t in texts])
        blend = (pd.Series(scores).rank().to_numpy() + pd.Series(length).rank().to_numpy()) / 2
        positive = labels >= 3 if kind == "graded" else labels > 0.5
        out = {}
        for scorer, values in (
            ("model", scores),
            ("length", length),
            ("filters_keep", keep),
            ("model+length ranks", blend),
        ):
            row = {"auc": auc(values, positive)}
            if kind == "graded":
                row["spearman"] = spearman(values, labels)
            out[scorer] = row
            rho = f"{row['spearman']:.3f}" if "spearman" in row else "-"
            print(f"{name:<22} {len(texts):>5} {scorer:<22} {rho:>9} {row['auc']:>7.3f}", flush=True)
        results[name] = {"n": len(texts), "positives": int(positive.sum()), **out}
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "model": f"{resolved.uri} ({resolved.version})",
        "seconds": round(time.time() - started, 1),
        "sets": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
