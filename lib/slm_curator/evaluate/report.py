"""Evaluation results into MLflow: per-model metrics, the report table, plots, and the judgments table."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from slm_curator.config import PipelineConfig
from slm_curator.evaluate import rubric


def _metric_name(label: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", label)


def log_evaluation(tracker, cfg: PipelineConfig, result) -> None:
    if not tracker.enabled:
        return
    import mlflow

    metrics: dict[str, float] = {
        "prompts": result.prompts,
        "parse_failures": result.parse_failures,
        "request_errors": result.request_errors,
    }
    for scorer, acc in result.sanity.items():
        metrics |= {f"sanity_{scorer}_{k}": v for k, v in acc.items() if v == v}  # NaN: no usable pair
    for row in result.report.to_dict("records"):
        name = _metric_name(row["model"])
        for key in (*rubric.CRITERIA, "overall", "ref_loglik", "rating", "win_rate"):
            value = row.get(key)
            if value is not None and value == value:  # not NaN
                metrics[f"{name}/{key}"] = float(value)
    tracker.log_metrics(metrics)
    tracker.set_tags({"judge": result.judge})
    mlflow.log_table(result.report, "evaluation/report.json")
    with tempfile.TemporaryDirectory() as tmp:
        result.report.to_csv(Path(tmp) / "report.csv", index=False)
        mlflow.log_artifact(str(Path(tmp) / "report.csv"), "evaluation")
        for path in plots(result, Path(tmp)):
            mlflow.log_artifact(str(path), "evaluation")


def plots(result, folder: Path) -> list[Path]:
    """Score distributions per model and criterion; model ratings with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    report = result.report
    fig, axes = plt.subplots(1, len(rubric.CRITERIA), figsize=(3.2 * len(rubric.CRITERIA), 3), squeeze=False)
    for ax, criterion in zip(axes.flat, rubric.CRITERIA, strict=True):
        means = report[criterion].fillna(0)
        errs = [means - report[f"{criterion}_low"].fillna(0), report[f"{criterion}_high"].fillna(0) - means]
        ax.bar(report["model"], means, yerr=errs, capsize=3)
        ax.set_ylim(0, 10)
        ax.set_title(criterion, fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    out.append(folder / "rubric_scores.png")
    fig.savefig(out[-1], dpi=90)
    plt.close(fig)
    if "rating" in report and report["rating"].notna().any():
        fig, ax = plt.subplots(figsize=(5, 3))
        errs = [report["rating"] - report["rating_low"], report["rating_high"] - report["rating"]]
        ax.errorbar(report["model"], report["rating"], yerr=errs, fmt="o", capsize=4)
        ax.set_ylabel("Bradley-Terry rating (95% CI)")
        fig.tight_layout()
        out.append(folder / "ratings.png")
        fig.savefig(out[-1], dpi=90)
        plt.close(fig)
    return out
