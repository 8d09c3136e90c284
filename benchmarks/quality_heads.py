"""Which head to ship: ridge against ordinal, 18 features against 45, by 5-fold cross-validation.

    .venv/bin/python benchmarks/quality_heads.py [--out benchmarks/results/quality_heads.json]

Data: the 2,996 Llama-3-70B FineWeb-Edu annotations in ../shared/data/quality, embedded once with the
default encoder spec (MiniLM, whole documents in up to 8 chunks; ONNX Runtime float32, the same vectors
as torch), features from the filters' signal functions. Folds by a hash of the text. Per head, the
mean over folds (and the worst fold) of:
  - Spearman with the 0-5 label;
  - AUC of label >= 3 ("educational", FineWeb-Edu's cut);
  - AUC of label >= 1 (any value against none: menus, listings, spam), and its gain over document
    length alone in the same fold, the baseline the issue names on human good/bad labels;
and, for a head fit on all annotations, AUC on the ELI5 answers' human validity labels (not trained
on; length alone is printed beside it). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "quality"
FOLDS = 5


def jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality_heads.json"))
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"error: {SHARED} not found (benchmarks need ../shared/data)")
    from slm_curator.quality.features import DEFAULT_FEATURES, feature_matrix
    from slm_curator.quality.head import fit_ordinal, fit_ridge
    from slm_curator.quality.metrics import auc, spearman
    from slm_curator.quality.model import resolve_model

    started = time.time()
    annotated = jsonl(SHARED / "fineweb_edu_llama3_scored_3k.jsonl.gz")
    eli5 = [r for r in jsonl(SHARED / "eli5_answers.jsonl.gz") if r.get("is_valid") is not None]
    texts = [r["text"] for r in annotated]
    y = np.array([float(r["score"]) for r in annotated])
    eli5_texts = [r["text"] for r in eli5]
    eli5_y = np.array([bool(r["is_valid"]) for r in eli5])
    encoder = resolve_model("").model.load_encoder(backend="onnx")
    emb, eli5_emb = encoder.embed(texts), encoder.embed(eli5_texts)
    feats, eli5_feats = feature_matrix(texts, DEFAULT_FEATURES), feature_matrix(eli5_texts, DEFAULT_FEATURES)
    length = np.array([len(t.split()) for t in texts], dtype=float)
    eli5_length = np.array([len(t.split()) for t in eli5_texts], dtype=float)
    fold = np.array([int(hashlib.sha1(t.encode()).hexdigest(), 16) % FOLDS for t in texts])
    print(f"embedded {len(texts)} + {len(eli5_texts)} texts in {time.time() - started:.0f} s", flush=True)

    legacy = [  # the earlier default features
        "log_chars", "log_words", "log_lines", "log_words_per_line", "stop_word_ratio", "c4_kept_line_ratio",
        "log_sentences", "gopher_mean_word_length", "gopher_alpha_words_ratio", "gopher_bullet_lines_ratio",
        "gopher_ellipsis_lines_ratio", "gopher_rep_dup_line_char_frac", "gopher_rep_top_2_gram_char_frac",
        "gopher_rep_dup_5_gram_char_frac", "fineweb_line_punct_ratio", "fineweb_short_line_ratio",
        "fineweb_char_dup_ratio", "fineweb_list_ratio",
    ]  # fmt: skip
    legacy_idx = [DEFAULT_FEATURES.index(n) for n in legacy]
    heads = {
        "ridge, 18 features, alpha 3000 (the earlier default)": (fit_ridge, legacy_idx, 3000.0),
        "ridge, 45 features, alpha 3000": (fit_ridge, None, 3000.0),
        "ordinal, 18 features, alpha 300": (fit_ordinal, legacy_idx, 300.0),
        "ordinal, 45 features, alpha 300 (the default)": (fit_ordinal, None, 300.0),
        "ordinal, 45 features, alpha 1000": (fit_ordinal, None, 1000.0),
    }

    def inputs(e, f, idx):
        return np.hstack([e.astype(np.float64), f if idx is None else f[:, idx]])

    results = {}
    header = (
        f"{'head':<52} {'spearman':>8} {'auc>=3':>7} {'auc>=1':>7} {'vs length':>10} {'worst':>7} {'eli5':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, (fit, idx, alpha) in heads.items():
        x = inputs(emb, feats, idx)
        per_fold = []
        for k in range(FOLDS):
            test = fold == k
            p = fit(x[~test], y[~test], alpha).predict(x[test])
            any_value = y[test] >= 1
            per_fold.append(
                {
                    "spearman": spearman(p, y[test]),
                    "auc_3": auc(p, y[test] >= 3),
                    "auc_1": auc(p, any_value),
                    "auc_1_gain_over_length": auc(p, any_value) - auc(length[test], any_value),
                }
            )
        full = fit(x, y, alpha)
        eli5_auc = auc(full.predict(inputs(eli5_emb, eli5_feats, idx)), eli5_y)
        mean = {k: float(np.mean([f[k] for f in per_fold])) for k in per_fold[0]}
        worst_gain = float(min(f["auc_1_gain_over_length"] for f in per_fold))
        results[name] = {
            "folds": per_fold,
            "mean": mean,
            "worst_auc_1_gain": worst_gain,
            "eli5_auc": eli5_auc,
        }
        print(
            f"{name:<52} {mean['spearman']:>8.3f} {mean['auc_3']:>7.3f} {mean['auc_1']:>7.3f} "
            f"{mean['auc_1_gain_over_length']:>+10.3f} {worst_gain:>+7.3f} {eli5_auc:>6.3f}",
            flush=True,
        )
    length_row = {
        "spearman": float(np.mean([spearman(length[fold == k], y[fold == k]) for k in range(FOLDS)])),
        "auc_3": float(np.mean([auc(length[fold == k], y[fold == k] >= 3) for k in range(FOLDS)])),
        "auc_1": float(np.mean([auc(length[fold == k], y[fold == k] >= 1) for k in range(FOLDS)])),
        "eli5_auc": auc(eli5_length, eli5_y),
    }
    print(
        f"{'document length alone (words)':<52} {length_row['spearman']:>8.3f} {length_row['auc_3']:>7.3f} "
        f"{length_row['auc_1']:>7.3f} {'':>10} {'':>7} {length_row['eli5_auc']:>6.3f}"
    )
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "data": "shared/data/quality/fineweb_edu_llama3_scored_3k.jsonl.gz (5 folds by text hash); "
        "eli5_answers.jsonl.gz (human validity, not trained on)",
        "seconds": round(time.time() - started, 1),
        "heads": results,
        "length": length_row,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
