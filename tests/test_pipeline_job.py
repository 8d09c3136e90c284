"""The main job as a user runs it: killed mid-stage and re-run, stopped by a gate, then completed.

A later stage refusing a table whose gate failed (tests/test_checks.py) and a re-run of the pipeline being
a no-op that says so (tests/test_notebooks.py) are tested in-process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from tests.conftest import ROOT, job_args, job_env, venv_python

from slm_curator.config import load_config
from slm_curator.sample_corpus import write_sample_corpus

pytestmark = pytest.mark.slow

STAGES = "ingest,filter,validate"


def _run(job: str, args: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_python(), job, *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env=job_env(tmp_path),
    )


def _run_and_kill(args: list[str], tmp_path, after_line: str, delay: float) -> str:
    """Start the pipeline; SIGKILL its whole process group (Python and the JVM) `delay` s after a log line."""
    proc = subprocess.Popen(
        [venv_python(), "jobs/pipeline.py", "--stages", STAGES, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=job_env(tmp_path),
        start_new_session=True,
    )
    seen: list[str] = []
    hit = threading.Event()

    def watch():
        for line in proc.stderr:
            seen.append(line)
            if after_line in line:
                hit.set()

    threading.Thread(target=watch, daemon=True).start()
    assert hit.wait(600), "".join(seen[-40:])
    time.sleep(delay)
    assert proc.poll() is None, "the job finished before it could be killed:\n" + "".join(seen[-20:])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(60)
    return "".join(seen)


def _tables(tmp_path):
    from slm_curator.delta import to_arrow

    tables = tmp_path / "data" / "tables"
    docs = to_arrow(str(tables / "documents"), columns=["doc_id"]).column("doc_id").to_pylist()
    filtered = to_arrow(str(tables / "filtered"), columns=["doc_id"]).column("doc_id").to_pylist()
    return docs, filtered


def _expected_doc_ids(corpus) -> set[str]:
    """The documents a correct ingest keeps, from the pure readers (no Spark): ids of accepted records."""
    from slm_curator.ingest.stage import list_input_files, parsed_rows, reader_options

    opts = reader_options(load_config("local", conf_dir=ROOT / "conf").ingest)
    return {
        row["doc_id"]
        for path in list_input_files([str(corpus)])
        for row in parsed_rows(path, opts, None)
        if row["reason"] is None
    }


def _line(stdout: str, stage: str) -> list[str]:
    return next(x for x in stdout.splitlines() if x.startswith(stage + " ")).split()


def test_a_killed_run_resumes_and_a_failing_gate_stops_the_job(tmp_path):
    corpus = write_sample_corpus(tmp_path / "corpus", documents=250)
    args = job_args(tmp_path, corpus)

    # 1. Killed while ingest merges into `documents` (a Delta commit either lands whole or not at all).
    _run_and_kill(args, tmp_path, "ingest: parsed", 1.0)

    # 2. A filter gate that allows no drops: the job stops with exit 4 naming table, expectation, value.
    strict = _run(
        "jobs/pipeline.py",
        ["--stages", STAGES, *job_args(tmp_path, corpus, "checks.max_drop_fraction.filter=0")],
        tmp_path,
    )
    assert strict.returncode == 4, strict.stderr[-3000:]
    assert "data error: data quality gate failed:" in strict.stderr
    assert "tables/filtered@v" in strict.stderr
    assert "expect_table_row_count_to_be_between(min_value=$min_kept_rows=" in strict.stderr
    assert "on view kept: observed" in strict.stderr
    assert (
        "stage filter: failed" in strict.stdout and "validate" not in strict.stdout.split("stage filter")[-1]
    )
    docs, filtered = _tables(tmp_path)
    assert len(docs) == len(set(docs)) and sorted(docs) == sorted(filtered)

    # 3. The default config: everything completes; no document lost or doubled by the kill. Ingest
    # finished in step 2, so its files are known: it reads nothing and says so.
    done = _run("jobs/pipeline.py", ["--stages", STAGES, *args], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _line(done.stdout, "ingest")[3] == "0"  # new rows
    from slm_curator.ingest.stage import list_input_files

    files = len(list_input_files([str(corpus)]))
    assert f"nothing new: all {files} files are unchanged since they were ingested" in done.stdout
    docs, filtered = _tables(tmp_path)
    assert len(docs) == len(set(docs)) and set(docs) == _expected_doc_ids(corpus)
    # The broken records (bad JSON, no text, bad UTF-8, a repeated id...) each in quarantine once.
    from slm_curator.delta import to_arrow

    quarantine = to_arrow(
        str(tmp_path / "data" / "tables" / "quarantine"), columns=["quarantine_id", "reason"]
    )
    ids, reasons = (quarantine.column(c).to_pylist() for c in ("quarantine_id", "reason"))
    assert len(ids) == len(set(ids)) and "bad_json" in reasons and "duplicate_id" in reasons, reasons
    assert sorted(filtered) == sorted(docs)
    assert "checks documents@v" in done.stdout and "checks filtered@v" in done.stdout
    assert "error(s)" not in done.stdout
