"""The pipeline: stages run in order under one MLflow parent run, then a summary table.

Each stage is `stage(spark, cfg, tracker) -> StageSummary`: it owns one child run, reads and writes
Delta tables through `slm_curator.delta`, logs its tables with their versions, and ends with the
data-quality gate of the table it wrote (`gate`), which stops the pipeline on an `error` expectation.
Dedup and score slot into `STAGES` between filter and validate when they land.
"""

from __future__ import annotations

import dataclasses
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
from slm_curator.config import ConfigError, PipelineConfig
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
    details: dict[str, int | str] = field(default_factory=dict)
    location: str = ""  # printed instead of table@version for stages whose output is not a table
    checks: list[str] = field(default_factory=list)  # gate verdicts, one line per validated table


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


def gate(spark, cfg: PipelineConfig, tracker: Tracker, table: str, version: int | None, input_version=None):
    """The table's data-quality gate (conf/checks/<table>.yml); raises DataQualityError on errors."""
    if not cfg.checks.enabled or version is None:
        return []
    from slm_curator.checks.stage import gate_params, run_gate

    report = run_gate(spark, cfg, tracker, table, version, gate_params(spark, cfg, table, input_version))
    return check_lines(table, version, report)


def check_lines(table: str, version: int, report) -> list[str]:
    """The summary lines of one gate: its verdict, then each failed `warn` expectation."""
    return [f"checks {table}@v{version}: {report.summary()}"] + [
        f"  warning: {o.description} observed {o.observed}" for o in report.warnings
    ]


def require_passed(spark, cfg: PipelineConfig, table: str, version: int | None, stage: str) -> None:
    if cfg.checks.enabled:
        from slm_curator.checks.stage import require_passed as _require

        _require(spark, cfg, table, version, stage)


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
        checks = gate(spark, cfg, tracker, "documents", result.documents_version)
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
        checks=checks,
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
    docs_ref = delta.table_ref(cfg.storage, "documents")
    require_passed(spark, cfg, "documents", delta.current_version(spark, docs_ref), "filter")
    checks: list[str] = []
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
        if not dry_run:
            checks = gate(spark, cfg, tracker, "filtered", result.output_version, result.input_version)
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
        checks=checks,
    )


def export_stage(spark, cfg: PipelineConfig, tracker: Tracker) -> StageSummary:
    from slm_curator.export.shard_format import MANIFEST_FILE
    from slm_curator.export.stage import resolve_input, run_export

    started = time.time()
    in_ref, in_version = resolve_input(spark, cfg)
    require_passed(spark, cfg, in_ref.name, in_version, "export")
    with tracker.stage_run("export"):
        result = run_export(spark, cfg, tracker.active_run_id())
        in_ref = delta.table_ref(cfg.storage, Path(result.input_table).name.split(".")[-1])
        tracker.log_table(in_ref, result.input_version, "input")
        tracker.log_table(delta.table_ref(cfg.storage, "shards"), result.shards_version, "output")
        tracker.log_metrics(
            {f"{split}_{k}": v for split, totals in result.splits.items() for k, v in totals.items()}
            | {f"epochs_{p.source}": p.epochs for p in result.plans}
            | {"candidates": result.candidates, "files_reused": result.files_reused}
        )
        tracker.log_artifact(result.tokenizer_path, "tokenizer")
        tracker.log_artifact(str(Path(result.folder) / MANIFEST_FILE), "shards")
    notes = [f"shards: {result.folder}"]
    if result.skipped:
        notes.append(f"nothing new: shards are up to date with {result.input_table}@v{result.input_version}")
    if not result.has_score:
        notes.append(f"no {cfg.export.score_column} column: uniform sampling weights, no annealing slice")
    details = {
        f"{split}: tokens / documents / shards": f"{t['tokens']} / {t['documents']} / {t['shards']}"
        for split, t in result.splits.items()
    }
    repeated = [f"{p.source} x{p.epochs:.2f}" for p in result.plans if p.epochs > 1.0001]
    if repeated:
        details["repeated sources"] = ", ".join(repeated[:6]) + (" ..." if len(repeated) > 6 else "")
    train_docs = sum(t["documents"] for s, t in result.splits.items() if s != "val")
    return StageSummary(
        stage="export",
        input_rows=result.candidates if not result.skipped else train_docs,
        output_rows=train_docs,
        new_rows=0
        if result.skipped
        else sum(t["shards"] for t in result.splits.values()) - result.files_reused,
        table=delta.table_ref(cfg.storage, "shards").identifier,
        version=result.shards_version,
        seconds=time.time() - started,
        notes=notes,
        details=details,
    )


def train_stage(spark, cfg: PipelineConfig, tracker: Tracker) -> StageSummary:
    from slm_curator.train.job import run_train

    started = time.time()
    with tracker.stage_run("train"):
        result = run_train(cfg, tracker, spark)
    details: dict[str, int | str] = {
        "parameters": result.num_params,
        "steps": f"{result.step}/{result.max_steps}",
    }
    if result.val_loss is not None:
        details["validation loss (nats/token)"] = f"{result.val_loss:.4f}"
    if result.unigram_val_loss is not None:
        details["unigram baseline (nats/token)"] = f"{result.unigram_val_loss:.4f}"
    if result.tokens_per_second:
        details["tokens/s"] = f"{result.tokens_per_second:.0f}" + (
            f" (MFU {result.mfu:.1%})" if result.mfu else ""
        )
        details["time waiting for data"] = f"{result.data_wait_fraction:.1%}"
    notes = list(result.notes)
    if result.resumed_from is not None and result.resumed_from < result.max_steps:
        notes.append(f"resumed from the checkpoint at step {result.resumed_from}")
    notes.append(f"checkpoints: {result.checkpoint_dir}")
    return StageSummary(
        stage="train",
        input_rows=result.step,
        output_rows=result.step,
        new_rows=result.step - (result.resumed_from or 0),
        table=result.checkpoint_dir,
        version=None,
        location=result.model_uri or result.checkpoint_dir,
        seconds=time.time() - started,
        notes=notes,
        details=details,
    )


def evaluate_stage(spark, cfg: PipelineConfig, tracker: Tracker) -> StageSummary:
    from slm_curator.evaluate.report import log_evaluation
    from slm_curator.evaluate.stage import format_report, run_evaluate

    started = time.time()
    with tracker.stage_run("evaluate"):
        result = run_evaluate(spark, cfg, tracker)
        log_evaluation(tracker, cfg, result)
    for warning in result.warnings:
        log.warning("evaluate: %s", warning)
    return StageSummary(
        stage="evaluate",
        input_rows=result.prompts,
        output_rows=len(result.report),
        new_rows=0 if result.nothing_new else len(result.report) * result.prompts,
        table=delta.table_ref(cfg.storage, "judgments").identifier,
        version=result.judgments_version,
        seconds=time.time() - started,
        notes=format_report(result).splitlines()
        + (
            ["nothing new: generations and judgments already hold all of these"] if result.nothing_new else []
        ),
    )


def validate_stage(spark, cfg: PipelineConfig, tracker: Tracker) -> StageSummary:
    """Every suite in checks.suites_dir on its table's current version; fails after all have run."""
    from slm_curator.checks.gate import DataQualityError
    from slm_curator.checks.stage import failure_message, gate_params, run_gate
    from slm_curator.checks.suites import load_suite, suite_names

    started = time.time()
    checks: list[str] = []
    failures: list[str] = []
    validated = 0
    if not cfg.checks.enabled:
        checks.append("checks.enabled is false: nothing validated")
    with tracker.stage_run("validate"):
        for name in suite_names(cfg.checks.suites_dir) if cfg.checks.enabled else []:
            ref = delta.table_ref(cfg.storage, load_suite(cfg.checks.suites_dir, name).table)
            version = delta.current_version(spark, ref)
            if version is None:
                checks.append(f"checks {name}: no table {ref} yet")
                continue
            params = gate_params(spark, cfg, name)
            report = run_gate(spark, cfg, tracker, name, version, params, raise_on_error=False)
            validated += 1
            checks.extend(check_lines(name, version, report))
            if report.errors:
                failures.append(failure_message(report))
    if failures:
        raise DataQualityError("\n".join(failures))
    return StageSummary(
        stage="validate",
        input_rows=validated,
        output_rows=validated,
        new_rows=0,
        table=delta.table_ref(cfg.storage, "dq_results").identifier,
        version=delta.current_version(spark, delta.table_ref(cfg.storage, "dq_results")),
        seconds=time.time() - started,
        checks=checks,
    )


STAGES = {
    "ingest": ingest_stage,
    "filter": filter_stage,
    "validate": validate_stage,
    "export": export_stage,
    "train": train_stage,
    "evaluate": evaluate_stage,
}
SPARK_STAGES = {"ingest", "filter", "validate", "export", "evaluate"}


def run_pipeline(
    cfg: PipelineConfig,
    stages: list[str] | None = None,
    spark=None,
    run_name: str = "pipeline",
    options: dict[str, dict] | None = None,
) -> list[StageSummary]:
    """Run `stages` (default: all) under one parent run; `options[stage]` are that stage's keyword arguments."""
    tracker = Tracker(cfg)
    names = stages or list(STAGES)
    if spark is None and SPARK_STAGES & set(names):
        spark = get_spark(cfg)
    summaries: list[StageSummary] = []
    with tracker.pipeline_run(run_name, tags={"env": cfg.env}) as run_id:
        for i, name in enumerate(names, 1):
            log.info("stage %s (%d/%d): starting", name, i, len(names))
            try:
                summary = STAGES[name](spark, cfg, tracker, **(options or {}).get(name, {}))
            except Exception:
                if summaries:  # what finished stays visible above the error
                    print(format_summary(summaries, tracker.run_link(run_id)) + f"\nstage {name}: failed")
                raise
            log.info("stage %s: done in %.1fs", name, summary.seconds)
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
        for key, value in s.details.items():
            lines.append(f"{'':<10} {key}: {value}")
        lines.extend(f"{'':<10} {note}" for note in s.notes)
        lines.extend(f"{'':<10} {check}" for check in s.checks)
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
    parser = _parser("slm-curator pipeline: ingest -> filter -> validate -> export -> train -> evaluate")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help=f"comma-separated stages to run, in pipeline order (default: all of {', '.join(STAGES)})",
    )
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        cfg = config_from_args(args, _input_overrides(args.input))
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"--stages: {unknown[0]!r} is not a stage; allowed values: {', '.join(STAGES)}")
        run_pipeline(cfg, stages=[s for s in STAGES if s in stages])

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


def validate_main(argv: list[str] | None = None) -> int:
    """Every data-quality suite on its table's current version; exit 4 when an `error` expectation fails."""
    args = job_parser(
        "slm-curator validate: Great Expectations suites (conf/checks) on every table -> dq_results"
    ).parse_args(argv)
    setup_logging(args.quiet)

    def body():
        run_pipeline(config_from_args(args), stages=["validate"], run_name="validate")

    return run_job(body)


def export_main(argv: list[str] | None = None) -> int:
    """The export stage alone: curated table -> tokenizer, token shards and the `shards` table."""
    args = job_parser("slm-curator export: curated table -> quality-weighted, mixed token shards").parse_args(
        argv
    )
    setup_logging(args.quiet)

    def body():
        run_pipeline(config_from_args(args), stages=["export"], run_name="export")

    return run_job(body)


def generate_main(argv: list[str] | None = None) -> int:
    """Complete prompts with a trained model: a model folder or an MLflow URI (models:/name/version)."""
    parser = job_parser("slm-curator generate: sample completions from a trained model")
    parser.add_argument("--model", default="", help="model folder or MLflow URI (default: latest registered)")
    parser.add_argument("--prompt", action="append", default=[], help="prompt text (repeatable)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=0, help="0 keeps every token")
    parser.add_argument("--top-p", type=float, default=0.95, help="1.0 turns nucleus sampling off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        from slm_curator.train.registry import load_generator

        cfg = config_from_args(args)
        location = args.model
        if not location:
            Tracker(cfg)  # points MLflow at the configured store
            location = f"models:/{cfg.train.register_as}/latest"
        generator = load_generator(location, args.device)
        prompts = args.prompt or ["Once upon a time"]
        texts = generator.complete(
            prompts, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed
        )
        for prompt, text in zip(prompts, texts, strict=True):
            print(json.dumps({"prompt": prompt, "completion": text}, ensure_ascii=False))

    return run_job(body)


def train_main(argv: list[str] | None = None) -> int:
    """The train stage alone (no Spark unless TorchDistributor launches it); works under torchrun."""
    parser = job_parser(
        "slm-curator train: token shards -> a GPT checkpoint, logged and registered in MLflow"
    )
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        cfg = config_from_args(args)
        # Spark only when TorchDistributor launches the workers or `shards` is a Unity Catalog table.
        needs_spark = cfg.train.launcher == "torch_distributor" or bool(cfg.storage.catalog)
        spark = get_spark(cfg) if needs_spark else None
        if int(os.environ.get("RANK", "0")) != 0:
            from slm_curator.train.job import run_train

            run_train(
                dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, enabled=False)),
                None,
                spark,
            )
            return 0
        run_pipeline(cfg, stages=["train"], spark=spark, run_name="train")

    return run_job(body)


def evaluate_main(argv: list[str] | None = None) -> int:
    """The evaluate stage alone: models complete held-out beginnings; an LLM judge grades and compares."""
    parser = job_parser("slm-curator evaluate: LLM-judge rubric scores, pairwise ratings, judge sanity check")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="URI",
        help="model to evaluate (repeatable; MLflow URI, "
        "model folder or checkpoint file; default: the newest training run's kept checkpoints)",
    )
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        extra = [f"evaluate.models={json.dumps(args.model)}"] if args.model else []
        run_pipeline(config_from_args(args, extra), stages=["evaluate"], run_name="evaluate")

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
