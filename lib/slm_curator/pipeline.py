"""The pipeline: its stages in order, run under one MLflow parent run, then a summary table.

Each stage is declared next to its code (`STAGE` in its module, see `slm_curator.stage`); this module
only orders them and runs them through the one runner. Adding a stage is its module plus one line here.
"""

from __future__ import annotations

import logging

from slm_curator.checks import validate
from slm_curator.config import ConfigError, PipelineConfig
from slm_curator.dedup import stage as dedup
from slm_curator.evaluate import stage as evaluate
from slm_curator.export import stage as export
from slm_curator.filters import stage as filters
from slm_curator.ingest import stage as ingest
from slm_curator.quality import labels as quality_labels
from slm_curator.quality import score as quality_score
from slm_curator.quality import train as quality_train
from slm_curator.stage import Stage, StageSummary, run_stage
from slm_curator.tracking import Tracker
from slm_curator.train import job as train

log = logging.getLogger("slm_curator")

STAGES: tuple[Stage, ...] = (
    ingest.STAGE,
    filters.STAGE,
    dedup.STAGE,
    quality_labels.STAGE,
    quality_train.STAGE,
    quality_score.STAGE,
    validate.STAGE,
    export.STAGE,
    train.STAGE,
    evaluate.STAGE,
)
NAMES = tuple(s.name for s in STAGES)
DEFAULT_NAMES = tuple(s.name for s in STAGES if s.in_default)  # what the main job runs


def find_stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise ConfigError(f"--stages: {name!r} is not a stage; allowed values: {', '.join(NAMES)}")


def run_pipeline(
    cfg: PipelineConfig,
    stages: list[str] | None = None,
    spark=None,
    run_name: str = "pipeline",
    options: dict[str, dict] | None = None,
) -> list[StageSummary]:
    """Run `stages` (default: every stage with in_default) in pipeline order under one parent run; `options[stage]` go to its work."""
    chosen = [s for s in STAGES if s.name in set(stages or DEFAULT_NAMES)]
    for name in stages or ():
        find_stage(name)  # an unknown name fails before anything runs
    tracker = Tracker(cfg)
    if spark is None and any(s.needs_spark(cfg) for s in chosen):
        from slm_curator.spark import get_spark

        spark = get_spark(cfg)
    summaries: list[StageSummary] = []
    with tracker.pipeline_run(run_name, tags={"env": cfg.env}) as run_id:
        for i, s in enumerate(chosen, 1):
            log.info("stage %s (%d/%d): starting", s.name, i, len(chosen))
            try:
                summary = run_stage(s, spark, cfg, tracker, STAGES, (options or {}).get(s.name))
            except Exception:
                if summaries:  # what finished stays visible above the error
                    print(format_summary(summaries, tracker.run_link(run_id)) + f"\nstage {s.name}: failed")
                raise
            log.info("stage %s: done in %.1fs", s.name, summary.seconds)
            summaries.append(summary)
        print(format_summary(summaries, tracker.run_link(run_id)))
    return summaries


def format_summary(summaries: list[StageSummary], link: str) -> str:
    header = f"{'stage':<10} {'input':>9} {'output':>9} {'new':>9} {'seconds':>8}  output@version"
    lines = ["", header, "-" * len(header)]
    for s in summaries:
        where = s.location or (
            f"{s.table}@v{s.version}" if s.version is not None else f"{s.table} (not written)"
        )
        lines.append(
            f"{s.stage:<10} {s.input_rows:>9} {s.output_rows:>9} {s.new_rows:>9} {s.seconds:>8.1f}  {where}"
        )
        lines.extend(f"{'':<10} {key}: {value}" for key, value in s.details.items())
        lines.extend(f"{'':<10} {note}" for note in s.notes)
        lines.extend(f"{'':<10} {check}" for check in s.checks)
    lines.append(f"total {sum(s.seconds for s in summaries):.1f}s")
    lines.append(f"MLflow: {link}")
    return "\n".join(lines)
