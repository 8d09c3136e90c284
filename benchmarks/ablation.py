"""The full default ablation on real data, timed: the pipeline stages it needs, then every arm and seed.

    .venv/bin/python benchmarks/ablation.py [--root /tmp/slm-ablation] [--figures docs/ablation]
                                            [--set ablation.steps=300 ...]

Inputs: ../shared/data/{web,html,warc} through ingest, filter, dedup and score (the main job's stages,
default config) into a fresh storage root; then `jobs/ablation.py`'s work with the clean held-out set
from ../shared/data/prose and the default arms, seeds, preset and steps. Nothing is reused from an
earlier run unless `--reuse` is given (then finished runs resume, which is what a user's re-run does,
and the times say so).

Time per arm is what its runs cost (training plus held-out evaluation and generation, summed over
seeds); "shared" is the held-out sets, the arms' tables, the one tokenizer and the exports. The
baseline the bar names is the wall clock: the whole default ablation must finish in under 60 minutes
on 2 cores. Prints the time table and the ablation's own report; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
PIPELINE_STAGES = ["ingest", "filter", "dedup", "score"]
LIMIT_MINUTES = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="", help="storage root (default: a fresh temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="keep what --root already holds")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--figures", default="", help="copy the report's figures and table here too")
    parser.add_argument("--out", default=str(RESULTS / "ablation.json"))
    args = parser.parse_args()
    for part in ("web", "html", "warc", "prose"):
        if not (DATA / part).exists():
            sys.exit(f"error: {DATA / part} not found (benchmarks need ../shared/data)")

    sys.path.insert(0, str(ROOT / "lib"))
    from slm_curator.ablation.job import ablation, format_report
    from slm_curator.cli import setup_logging
    from slm_curator.config import load_config
    from slm_curator.pipeline import run_pipeline
    from slm_curator.spark import get_spark

    setup_logging()
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="slm-ablation-"))
    if root.exists() and any(root.iterdir()) and not args.reuse:
        sys.exit(f"error: {root} is not empty; pass --reuse to resume in it, or name a new folder")
    inputs = [str(DATA / p) for p in ("web", "html", "warc")]
    cfg = load_config(
        "local",
        [
            f"storage.root={root}",
            f"ingest.input={json.dumps(inputs)}",
            f"ablation.clean_inputs={json.dumps([str(DATA / 'prose')])}",
            *args.overrides,
        ],
        conf_dir=ROOT / "conf",
    )
    started = time.time()
    spark = get_spark(cfg)
    summaries = run_pipeline(cfg, stages=PIPELINE_STAGES, spark=spark)
    pipeline_seconds = time.time() - started

    started = time.time()
    result = ablation(cfg, spark=spark)
    ablation_seconds = time.time() - started
    spark.stop()

    per_arm = {}
    for r in result.rows:
        a = per_arm.setdefault(
            r["arm"], {"runs": 0, "train_seconds": 0.0, "eval_seconds": 0.0, "resumed_runs": 0}
        )
        a["runs"] += 1
        a["train_seconds"] += r["train_seconds"]
        a["eval_seconds"] += r["eval_seconds"]
        a["resumed_runs"] += int(r["resumed_from"] is not None)
    runs_seconds = sum(a["train_seconds"] + a["eval_seconds"] for a in per_arm.values())
    total = pipeline_seconds + ablation_seconds

    lines = [f"{'part':<18} {'runs':>4} {'train s':>9} {'eval s':>8} {'total s':>9}", "-" * 52]
    lines.append(f"{'pipeline stages':<18} {'':>4} {'':>9} {'':>8} {pipeline_seconds:>9.1f}")
    lines.append(f"{'ablation shared':<18} {'':>4} {'':>9} {'':>8} {ablation_seconds - runs_seconds:>9.1f}")
    for name, a in per_arm.items():
        lines.append(
            f"{name:<18} {a['runs']:>4} {a['train_seconds']:>9.1f} {a['eval_seconds']:>8.1f} "
            f"{a['train_seconds'] + a['eval_seconds']:>9.1f}"
        )
    lines.append("-" * 52)
    lines.append(
        f"{'ablation':<18} {len(result.rows):>4} {'':>9} {'':>8} {ablation_seconds:>9.1f}  "
        f"({ablation_seconds / 60:.1f} min; with the pipeline stages {total / 60:.1f} min; "
        f"limit {LIMIT_MINUTES:.0f} min)"
    )
    report = format_report(result, cfg.ablation.baseline_arm)
    print()
    print("\n".join(lines))
    print()
    print(report)

    a = cfg.ablation
    out = {
        "benchmark": "ablation",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {"preset": a.preset, "steps": a.steps, "seeds": a.seeds, "arms": [x.name for x in a.arms]},
        "inputs": {"train": inputs, "clean": a.clean_inputs},
        "pipeline_seconds": pipeline_seconds,
        "pipeline_rows": {s.stage: s.output_rows for s in summaries},
        "ablation_seconds": ablation_seconds,
        "ablation_shared_seconds": ablation_seconds - runs_seconds,
        "per_arm": per_arm,
        "under_limit": ablation_seconds < LIMIT_MINUTES * 60,
        "limit_minutes": LIMIT_MINUTES,
        "report": report,
        "stats": json.loads((root / "ablation" / "report" / "ablation.json").read_text())["stats"],
        "held_out": result.held,
        "notes": result.notes,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    if args.figures:
        dest = Path(args.figures)
        dest.mkdir(parents=True, exist_ok=True)
        for f in [*result.figures, str(root / "ablation" / "report" / "ablation.txt")]:
            shutil.copyfile(f, dest / Path(f).name)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
