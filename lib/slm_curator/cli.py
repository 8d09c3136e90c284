"""What every job shares: arguments, config loading, logging, and exit codes that name the problem.

Jobs stay thin: they declare their extra arguments, then hand a function to `run_job`, which turns a
config error, a missing jar or a schema mismatch into one readable line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable

from slm_curator.checks.gate import DataQualityError
from slm_curator.config import ENVIRONMENTS, ConfigError, PipelineConfig, load_config
from slm_curator.delta import SchemaMismatchError
from slm_curator.spark import MavenResolutionError

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


def config_from_args(args: argparse.Namespace, extra: list[str] | None = None) -> PipelineConfig:
    return load_config(args.env, [*args.overrides, *(extra or [])], args.conf_dir)


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "urllib3", "alembic", "mlflow", "git", "httpx"):
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


def main(argv: list[str] | None = None) -> int:
    """`slm-curator <stage> ...`: the installed entry point; same as `python jobs/<stage>.py`."""
    from slm_curator import pipeline

    stages = {
        "pipeline": pipeline.main,
        "ingest": pipeline.ingest_main,
        "filter": pipeline.filter_main,
        "validate": pipeline.validate_main,
        "export": pipeline.export_main,
        "train": pipeline.train_main,
        "evaluate": pipeline.evaluate_main,
        "generate": pipeline.generate_main,
    }
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in stages:
        print(f"usage: slm-curator {{{','.join(stages)}}} [options]", file=sys.stderr)
        return EXIT_CONFIG
    return stages[argv[0]](argv[1:])
