"""Rebuild the package's default quality model from the shared annotations, through the real stages.

    .venv/bin/python scripts/train_default_quality_model.py [--shared ../shared/data]
    # the Spark NLP backend's default: windows of words, features Spark SQL computes
    .venv/bin/python scripts/train_default_quality_model.py --target lib/slm_curator/quality/default_model_words \
        --set quality.model.chunking=words --set 'quality.model.features=[log_chars, log_lines]'

It runs the labels and train_quality stages in a scratch folder (Llama-3-70B FineWeb-Edu annotations,
2,996 documents, 20% held out by a hash of the text), then copies the registered model's
quality_model.json into lib/slm_curator/quality/default_model/ and writes TRAINING.md beside it from
the model's own training record (data, settings, held-out metrics). Needs ../shared/data, which a
user's clone does not have; the default model it writes ships with the package.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "lib" / "slm_curator" / "quality" / "default_model"
ANNOTATIONS = "quality/fineweb_edu_llama3_scored_3k.jsonl.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    parser.add_argument(
        "--target", default=str(TARGET), help="model folder to write (default: the package's default model)"
    )
    args = parser.parse_args()
    source = Path(args.shared) / ANNOTATIONS
    if not source.exists():
        print(f"error: {source} not found (the shared data is not in a user's clone)", file=sys.stderr)
        return 2
    from slm_curator.cli import setup_logging
    from slm_curator.config import load_config
    from slm_curator.pipeline import run_pipeline
    from slm_curator.quality.model import MODEL_FILE, load_model

    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        imported = json.dumps([{"path": str(source), "name": "fineweb_edu_llama3"}])
        cfg = load_config(
            "local",
            [f"storage.root={tmp}", f"quality.labels.imported={imported}", *args.overrides],
            str(ROOT / "conf"),
        )
        summaries = run_pipeline(cfg, stages=["labels", "train_quality"], run_name="default_quality_model")
        import mlflow

        m = cfg.quality.model
        folder = Path(mlflow.artifacts.download_artifacts(f"models:/{m.register_as}@{m.alias}"))
        model = load_model(folder)
        target = Path(args.target)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(model.folder / MODEL_FILE, target / MODEL_FILE)
        (target / "TRAINING.md").write_text(
            training_note(model.record, summaries[-1].location, args.overrides)
        )
    print(f"wrote {target / MODEL_FILE} and TRAINING.md")
    return 0


def training_note(record: dict, uri: str, overrides: list[str]) -> str:
    held = record.get("held_out", {})
    lines = [
        "# The default quality model: how it was trained, what it measured",
        "",
        "Written by `scripts/train_default_quality_model.py` from the model's own training record; do not",
        "edit by hand. Rebuild it with that script (it needs the shared annotations)"
        + (f", given {' '.join('--set ' + o for o in overrides)}." if overrides else "."),
        "",
        f"- Labels: {record.get('labels')} (training split), {ANNOTATIONS} (Llama-3-70B scores 0-5 with",
        "  the FineWeb-Edu prompt, ODC-By documents); 20% held out by a hash of the text.",
        f"- Settings: {record.get('settings')}; encoder, chunking and features in quality_model.json.",
        "",
        "| held-out set | n | Spearman | Spearman, length alone | AUC (>= 3) | AUC, length alone "
        "| AUC (>= 1) | AUC, length alone |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, d in held.items():
        cells = [
            f"{d.get(k, float('nan')):.3f}"
            for k in ("spearman", "spearman_length", "auc", "auc_length", "auc_any", "auc_any_length")
        ]
        lines.append(f"| {name} | {d['n']} | " + " | ".join(cells) + " |")
    matrix = record.get("confusion_matrix")
    if matrix:
        lines += [
            "",
            "Confusion matrix on the held-out annotations (rows: label, columns: predicted 0-5):",
            "",
        ]
        lines += ["    " + " ".join(f"{v:4d}" for v in row) for row in matrix]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
