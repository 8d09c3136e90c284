"""The pipeline: stages run in order under one MLflow parent run, then a summary table.

Each stage is `stage(spark, cfg, tracker) -> StageSummary`: it owns one child run, reads and writes
Delta tables through `slm_curator.delta`, and logs its tables with their versions. Stages added by
later work (filter, dedup, score, validate) slot into `STAGES`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from slm_curator import delta
from slm_curator.cli import config_from_args, job_parser, run_job, setup_logging
from slm_curator.config import PipelineConfig
from slm_curator.ingest.stage import list_input_files, result_metrics, run_ingest
from slm_curator.sample_corpus import write_sample_corpus
from slm_curator.spark import get_spark
from slm_curator.tracking import Tracker

log = logging.getLogger("slm_curator")


@dataclass
class StageSummary:
    stage: str
    input_rows: int
    output_rows: int
    new_rows: int
    table: str
    version: int | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    details: dict[str, int] = field(default_factory=dict)


def sample_corpus_dir(cfg: PipelineConfig) -> Path:
    """The embedded corpus, written on first use; a size change in config rewrites it."""
    folder = Path(cfg.storage.root) / "sample_corpus" / f"n{cfg.ingest.sample_documents}"
    marker = folder / "_COMPLETE"
    if not marker.exists():
        log.info(
            "writing the embedded sample corpus (%d documents) to %s", cfg.ingest.sample_documents, folder
        )
        write_sample_corpus(folder, cfg.ingest.sample_documents)
        marker.write_text("ok\n")
    return folder


def ingest_stage(spark, cfg: PipelineConfig, tracker: Tracker) -> StageSummary:
    started = time.time()
    inputs = cfg.ingest.input or [str(sample_corpus_dir(cfg))]
    files = list_input_files(inputs)
    with tracker.stage_run("ingest") as run_id:
        log.info("ingest: reading %d files from %s", len(files), ", ".join(inputs))
        result = run_ingest(spark, cfg, run_id, files)
        tracker.log_metrics(result_metrics(result))
        _log_input_files(tracker, files)
        tracker.log_table(delta.table_ref(cfg.storage, "documents"), result.documents_version, "output")
        tracker.log_table(delta.table_ref(cfg.storage, "quarantine"), result.quarantine_version, "output")
    notes = []
    if result.files_skipped == result.files:
        notes.append(f"nothing new: all {result.files} files are unchanged since they were ingested")
    elif result.documents_inserted == 0 and result.quarantine_inserted == 0 and result.records > 0:
        already = result.records - result.quarantined_total
        notes.append(f"nothing new: all {already} documents were already ingested")
    elif result.files_skipped:
        notes.append(f"{result.files_skipped} unchanged files skipped")
    return StageSummary(
        stage="ingest",
        input_rows=result.records,
        output_rows=result.records - result.quarantined_total,
        new_rows=result.documents_inserted,
        table=delta.table_ref(cfg.storage, "documents").identifier,
        version=result.documents_version,
        seconds=time.time() - started,
        notes=notes,
        details={f"quarantined:{k}": v for k, v in result.quarantined.items()},
    )


def _log_input_files(tracker: Tracker, files: list[str]) -> None:
    if not tracker.enabled:
        return
    import mlflow

    listing = [{"path": f, "bytes": os.path.getsize(f) if os.path.exists(f) else None} for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input_files.json"
        path.write_text(json.dumps(listing, indent=1))
        mlflow.log_artifact(str(path))


def filter_stage(spark, cfg: PipelineConfig, tracker: Tracker, dry_run: bool = False) -> StageSummary:
    from slm_curator.filters.stage import run_filter

    started = time.time()
    with tracker.stage_run("filter"):
        result = run_filter(spark, cfg, tracker.active_run_id(), dry_run=dry_run)
        tracker.log_metrics(
            {
                "documents": result.documents,
                "kept": result.kept,
                "dropped": result.documents - result.kept,
                "analysed": result.processed,
            }
            | {f"dropped_{reason}": n for reason, n in result.drop_reasons.items()}
        )
        docs_ref = delta.table_ref(cfg.storage, "documents")
        tracker.log_table(docs_ref, result.input_version, "input")
        if not dry_run:
            tracker.log_table(delta.table_ref(cfg.storage, "filtered"), result.output_version, "output")
        if result.histograms:
            tracker.log_histograms(result.histograms, "filter_signal_histograms")
    notes = []
    if result.skipped:
        notes.append(
            f"nothing new: filtered is up to date with documents@v{result.input_version} and this config"
        )
    if dry_run:
        notes.append("dry run: nothing written")
    return StageSummary(
        stage="filter",
        input_rows=result.documents,
        output_rows=result.kept,
        new_rows=0 if dry_run else result.processed,
        table=delta.table_ref(cfg.storage, "filtered").identifier,
        version=result.output_version,
        seconds=time.time() - started,
        notes=notes,
        details={f"dropped:{k}": v for k, v in sorted(result.drop_reasons.items(), key=lambda kv: -kv[1])},
    )


STAGES = {"ingest": ingest_stage, "filter": filter_stage}


def run_pipeline(
    cfg: PipelineConfig,
    stages: list[str] | None = None,
    spark=None,
    run_name: str = "pipeline",
    options: dict[str, dict] | None = None,
) -> list[StageSummary]:
    """Run `stages` (default: all) under one parent run; `options[stage]` are that stage's keyword arguments."""
    tracker = Tracker(cfg)
    spark = spark or get_spark(cfg)
    summaries: list[StageSummary] = []
    with tracker.pipeline_run(run_name, tags={"env": cfg.env}) as run_id:
        for name in stages or list(STAGES):
            log.info("stage %s: starting", name)
            summary = STAGES[name](spark, cfg, tracker, **(options or {}).get(name, {}))
            log.info("stage %s: done in %.1fs", name, summary.seconds)
            summaries.append(summary)
        print(format_summary(summaries, tracker.run_link(run_id)))
    return summaries


def format_summary(summaries: list[StageSummary], link: str) -> str:
    header = f"{'stage':<10} {'input':>9} {'output':>9} {'new':>9} {'seconds':>8}  table@version"
    lines = ["", header, "-" * len(header)]
    for s in summaries:
        where = f"{s.table}@v{s.version}" if s.version is not None else f"{s.table} (not written)"
        lines.append(
            f"{s.stage:<10} {s.input_rows:>9} {s.output_rows:>9} {s.new_rows:>9} {s.seconds:>8.1f}  {where}"
        )
        for key, value in s.details.items():
            lines.append(f"{'':<10} {key}: {value}")
        lines.extend(f"{'':<10} {note}" for note in s.notes)
    lines.append(f"MLflow: {link}")
    return "\n".join(lines)


def _parser(description: str):
    parser = job_parser(description)
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH",
        help="file, folder or glob to ingest (repeatable; default: the embedded sample corpus)",
    )
    return parser


def _input_overrides(inputs: list[str]) -> list[str]:
    return [f"ingest.input={json.dumps(inputs)}"] if inputs else []


def main(argv: list[str] | None = None) -> int:
    """The main job: every stage, in order, on the embedded default or on --input files."""
    args = _parser(
        "slm-curator pipeline: ingest -> (filter -> dedup -> score -> validate as they land)"
    ).parse_args(argv)
    setup_logging(args.quiet)

    def body():
        cfg = config_from_args(args, _input_overrides(args.input))
        run_pipeline(cfg)

    return run_job(body)


def filter_main(argv: list[str] | None = None) -> int:
    """The filter stage alone: documents -> filtered (or, with --dry-run, only the counts)."""
    parser = job_parser("slm-curator filter: documents -> filtered (signals, cleaned text, drop reasons)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be dropped; write nothing")
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        cfg = config_from_args(args)
        run_pipeline(cfg, stages=["filter"], run_name="filter", options={"filter": {"dry_run": args.dry_run}})

    return run_job(body)


def ingest_main(argv: list[str] | None = None) -> int:
    """The ingest stage alone (its own MLflow run)."""
    args = _parser("slm-curator ingest: raw files -> documents + quarantine Delta tables").parse_args(argv)
    setup_logging(args.quiet)

    def body():
        cfg = config_from_args(args, _input_overrides(args.input))
        run_pipeline(cfg, stages=["ingest"], run_name="ingest")

    return run_job(body)


if __name__ == "__main__":
    sys.exit(main())
