"""Cost of recording a gate's verdict in `dq_results`: the append committed once per key (current)
against a merge on `check_id` (the baseline, what the gate did before), as the results table grows.

Each verdict is the real rows of a `documents` suite run (`checks.stage.results_frame`: one row per
expectation). For each size of an existing results table (`--prior` verdicts, written beforehand as
that many files, as that many gates would leave them), both ways write the same new verdicts into
their own copy of the table, timed one by one in the same warm Spark session (local[2], the embedded
default's settings), after one untimed write to warm the session; then each writes its last verdict
again, which must add nothing.

    python benchmarks/gates.py [--prior 0,100,400] [--verdicts 6]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from slm_curator import delta  # noqa: E402
from slm_curator.checks.gate import Outcome  # noqa: E402
from slm_curator.checks.stage import RESULTS_TABLE, GateReport, _write_results, results_rows  # noqa: E402
from slm_curator.checks.suites import load_suite, params_fingerprint  # noqa: E402
from slm_curator.config import load_config  # noqa: E402
from slm_curator.schemas import DQ_RESULTS  # noqa: E402


def verdict(suite, version: int) -> tuple[GateReport, str]:
    """A passing verdict of `suite` on documents@`version`, with the parameters a stage supplies."""
    params = {"input_rows": 1000 + version, "min_kept_rows": 500, "max_doc_chars": 1_000_000}
    outcomes = [
        Outcome(i, e.type, e.type, e.severity, e.view, True, "", None, 1000, "", "")
        for i, e in enumerate(suite.expectations)
    ]
    report = GateReport(suite.name, "/bench/tables/documents", version, outcomes, False, params, 0)
    return report, params_fingerprint(params)


def merge_write(spark, cfg, report, suite, params_fp):
    """The baseline: an insert-only merge on check_id (reads the target to find matches)."""
    frame = spark.createDataFrame(results_rows(report, suite, "validate", None, params_fp), DQ_RESULTS)
    return delta.merge(frame, delta.table_ref(cfg.storage, RESULTS_TABLE), keys=["check_id"])


def append_write(spark, cfg, report, suite, params_fp):
    return _write_results(spark, cfg, report, suite, "validate", None, params_fp)


WAYS = {"merge on check_id (baseline)": merge_write, "append once per key": append_write}


def prefill(spark, cfg, suite, prior: int) -> None:
    """`prior` earlier verdicts as `prior` files (one per gate), in one write."""
    if prior == 0:
        return
    rows = []
    for v in range(prior):
        report, fp = verdict(suite, -1 - v)
        rows += results_rows(report, suite, "validate", None, fp)
    frame = spark.createDataFrame(rows, DQ_RESULTS).repartition(prior)
    delta.write(frame, delta.table_ref(cfg.storage, RESULTS_TABLE), "overwrite")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", default="0,100,400", help="sizes of the existing results table, in verdicts")
    ap.add_argument("--verdicts", type=int, default=6, help="new verdicts written per size and way")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gates.json"))
    args = ap.parse_args(argv)
    from slm_curator.spark import get_spark

    work = Path(tempfile.mkdtemp(prefix="slm-bench-gates-"))
    base = load_config("local", [f"storage.root={work}", "spark.show_progress=false"], conf_dir=ROOT / "conf")
    suite = load_suite(base.checks.suites_dir, "documents")
    spark = get_spark(base, app_name="bench-gates")
    rows = []
    try:
        for i, write in enumerate(WAYS.values()):  # warm-up: the JVM's first Delta writes, untimed
            cfg = _cfg(base, work / f"warm-{i}")
            prefill(spark, cfg, suite, 1)
            report, fp = verdict(suite, 0)
            write(spark, cfg, report, suite, fp)
        for prior in [int(p) for p in args.prior.split(",")]:
            for way, write in WAYS.items():
                cfg = _cfg(base, work / f"{way.split()[0]}-{prior}")
                prefill(spark, cfg, suite, prior)
                times = []
                for v in range(1, args.verdicts + 1):
                    report, fp = verdict(suite, v)
                    started = time.perf_counter()
                    result = write(spark, cfg, report, suite, fp)
                    times.append(time.perf_counter() - started)
                    assert result.committed
                started = time.perf_counter()
                again = write(spark, cfg, report, suite, fp)
                repeat = time.perf_counter() - started
                assert not again.committed, way
                count = delta.read(spark, delta.table_ref(cfg.storage, RESULTS_TABLE)).count()
                assert count == (prior + args.verdicts) * len(suite.expectations), (way, count)
                rows.append(
                    {
                        "prior_verdicts": prior,
                        "way": way,
                        "median_s": statistics.median(times),
                        "repeat_s": repeat,
                    }
                )
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    baseline = {r["prior_verdicts"]: r["median_s"] for r in rows if r["way"].endswith("(baseline)")}
    print(f"\n{'prior':>6}  {'way':<30} {'median s':>9} {'repeat s':>9} {'baseline/this':>14}")
    for r in rows:
        r["speedup_vs_baseline"] = baseline[r["prior_verdicts"]] / r["median_s"]
        print(
            f"{r['prior_verdicts']:>6}  {r['way']:<30} {r['median_s']:>9.2f} {r['repeat_s']:>9.2f}"
            f" {r['speedup_vs_baseline']:>13.2f}x"
        )
    out = {
        "benchmark": "gate verdict write",
        "baseline": "merge on check_id",
        "verdict_rows": len(suite.expectations),
        "verdicts_per_size": args.verdicts,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def _cfg(base, root: Path):
    import dataclasses

    return dataclasses.replace(base, storage=dataclasses.replace(base.storage, root=str(root)))


if __name__ == "__main__":
    sys.exit(main())
