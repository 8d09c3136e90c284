"""Every job's command line, generated from the stage declarations, and exit codes that name the problem.

`slm-curator <stage>` (or `python jobs/<stage>.py`) runs one stage under its own MLflow run;
`slm-curator pipeline` runs them all. Each parser has the shared flags (--env, --conf-dir, --set,
--quiet) and the stage's own `Argument`s. `run_job` turns a config error, a missing jar, bad data or a
failed gate into one readable line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable

from slm_curator.checks.gate import DataQualityError
from slm_curator.config import ENVIRONMENTS, ConfigError, PipelineConfig, load_config
from slm_curator.delta import SchemaMismatchError
from slm_curator.pipeline import DEFAULT_NAMES, NAMES, STAGES, find_stage, run_pipeline
from slm_curator.spark import MavenResolutionError
from slm_curator.stage import Stage

EXIT_CONFIG = 2
EXIT_DEPENDENCY = 3
EXIT_DATA = 4
EXIT_FAILED = 1


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--env", default="local", choices=ENVIRONMENTS, help="config overlay: conf/env/<env>.yml"
    )
    parser.add_argument("--conf-dir", default=None, help="folder with pipeline.yml (default: nearest conf/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set ingest.max_doc_bytes=500000 (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="warnings only")
    return parser


def _dest(a) -> str:
    return a.config_key.replace(".", "__")


def _add_arguments(parser: argparse.ArgumentParser, stages: list[Stage], pipeline: bool = False) -> None:
    for stage in stages:
        for a in stage.arguments:
            if pipeline and not a.in_pipeline:
                continue
            if a.option:
                parser.add_argument(a.flag, action="store_true", dest=a.option, help=a.help)
            else:
                parser.add_argument(
                    a.flag, action="append", default=[], dest=_dest(a), metavar=a.metavar, help=a.help
                )


def config_from_args(args: argparse.Namespace, stages: list[Stage] = ()) -> PipelineConfig:
    """Defaults <- YAML <- --set, then each stage flag that sets a config key (lists, repeatable)."""
    extra = []
    for stage in stages:
        for a in stage.arguments:
            values = getattr(args, _dest(a), None) if a.config_key else None
            if values:
                extra.append(f"{a.config_key}={json.dumps(values)}")
    return load_config(args.env, [*args.overrides, *extra], args.conf_dir)


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "urllib3", "alembic", "mlflow", "git", "httpx", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_job(body: Callable[[], int | None]) -> int:
    """Run a job body; map known failures to exit codes with a one-line message."""
    started = time.time()
    try:
        code = body() or 0
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except MavenResolutionError as exc:
        print(f"dependency error: {exc}", file=sys.stderr)
        return EXIT_DEPENDENCY
    except (SchemaMismatchError, FileNotFoundError, DataQualityError) as exc:
        print(f"data error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except Exception:  # noqa: BLE001 - the job must fail loudly, with the trace
        traceback.print_exc()
        print(f"job failed after {time.time() - started:.0f}s", file=sys.stderr)
        return EXIT_FAILED
    return code


def stage_main(name: str, argv: list[str] | None = None) -> int:
    """One stage alone, under its own MLflow run: what jobs/<name>.py runs."""
    stage = find_stage(name)
    parser = job_parser(f"slm-curator {stage.name}: {stage.description}")
    _add_arguments(parser, [stage])
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        cfg = config_from_args(args, [stage])
        if stage.worker is not None and int(os.environ.get("RANK", "0")) != 0:
            stage.worker(cfg)  # torchrun ranks > 0: the work without tracking or reporting
            return 0
        options = {a.option: getattr(args, a.option) for a in stage.arguments if a.option}
        run_pipeline(cfg, stages=[stage.name], run_name=stage.name, options={stage.name: options})

    return run_job(body)


def pipeline_main(argv: list[str] | None = None) -> int:
    """The main job: every stage, in order, on the embedded default or on --input files."""
    parser = job_parser(f"slm-curator pipeline: {' -> '.join(DEFAULT_NAMES)}")
    _add_arguments(parser, list(STAGES), pipeline=True)
    parser.add_argument(
        "--stages",
        default=",".join(DEFAULT_NAMES),
        help=f"comma-separated stages to run, in pipeline order (default: {', '.join(DEFAULT_NAMES)}; "
        f"all: {', '.join(NAMES)})",
    )
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        names = [find_stage(s.strip()).name for s in args.stages.split(",") if s.strip()]
        run_pipeline(config_from_args(args, list(STAGES)), stages=names)

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
        from slm_curator.tracking import Tracker
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


def ablation_main(argv: list[str] | None = None) -> int:
    """The ablation: the same model on raw and on each curated table, compared on held-out text."""
    parser = job_parser(
        "slm-curator ablation: train the same small model on each arm (raw, heuristics, dedup, quality, "
        "annealing) with the same tokenizer, tokens and seeds; report held-out bits per byte with intervals"
    )
    parser.add_argument(
        "--clean",
        action="append",
        default=[],
        metavar="PATH",
        help="clean reference text to evaluate on (file or folder; repeatable): ablation.clean_inputs",
    )
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    def body():
        from slm_curator.ablation.job import ablation

        extra = [f"ablation.clean_inputs={json.dumps(args.clean)}"] if args.clean else []
        ablation(load_config(args.env, [*args.overrides, *extra], args.conf_dir))

    return run_job(body)


def main(argv: list[str] | None = None) -> int:
    """`slm-curator <command> ...` (the installed entry point; `python jobs/<command>.py` is the same)."""
    commands = ["pipeline", *NAMES, "generate", "ablation"]
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in commands:
        print(f"usage: slm-curator {{{','.join(commands)}}} [options]", file=sys.stderr)
        return EXIT_CONFIG
    command, rest = argv[0], argv[1:]
    if command == "pipeline":
        return pipeline_main(rest)
    if command == "generate":
        return generate_main(rest)
    if command == "ablation":
        return ablation_main(rest)
    return stage_main(command, rest)


if __name__ == "__main__":
    sys.exit(main())
