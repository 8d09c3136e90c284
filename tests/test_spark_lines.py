"""The Spark stages end to end on whichever Spark line is installed (4.1 in the main CI venv, 3.5 in the
second one: `SLM_SPARK_LINE=3.5 scripts/test.sh tests/test_spark_lines.py ...`, see .ci/run).

One run of the main job's Spark stages as a user starts it (a subprocess, its own JVM with the jars of
its line): ingest, filter, dedup, score (ONNX Runtime, the default on CPU), the gates after each,
export; then a re-run on the other CPU score backend (torch), where ingest, filter and dedup must add nothing and score, its config
changed, must rescore every document to the same scores. (A re-run with nothing changed adding nothing
at score is tested in-process: tests/test_quality_stage.py, tests/test_notebooks.py.)
"""

from __future__ import annotations

import subprocess

import pyspark
import pytest
from tests.conftest import ROOT, job_args, job_env, venv_python

from slm_curator.config import running_spark_line
from slm_curator.sample_corpus import write_sample_corpus

pytestmark = [pytest.mark.slow, pytest.mark.spark_line]

STAGES = "ingest,filter,dedup,score,validate,export"


def _run(tmp_path, corpus, *sets: str, stages: str = STAGES) -> subprocess.CompletedProcess:
    args = ["--stages", stages, *job_args(tmp_path, corpus, *sets)]
    return subprocess.run(
        [venv_python(), "jobs/pipeline.py", *args],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
        env=job_env(tmp_path),
    )


def _rows(stdout: str, stage: str) -> tuple[int, int, int]:
    line = next(x for x in stdout.splitlines() if x.startswith(stage + " "))
    return tuple(int(v) for v in line.split()[1:4])


def test_spark_stages_run_end_to_end_and_a_rerun_on_the_other_backend_rescores_only_score(tmp_path):
    from slm_curator.delta import to_arrow

    assert pyspark.__version__.startswith(running_spark_line() + ".")
    corpus = write_sample_corpus(tmp_path / "corpus", documents=200)
    first = _run(tmp_path, corpus)
    assert first.returncode == 0, first.stderr[-4000:]
    _, ingested, new = _rows(first.stdout, "ingest")
    assert ingested > 0 and new == ingested
    kept = _rows(first.stdout, "filter")[1]
    scored = _rows(first.stdout, "score")[1]
    assert 0 < scored <= kept <= ingested
    tables = tmp_path / "data" / "tables"

    def scores() -> dict[str, float]:
        t = to_arrow(str(tables / "scored"), columns=["doc_id", "quality_score"]).to_pylist()
        return {r["doc_id"]: r["quality_score"] for r in t}

    auto_scores = scores()  # score.backend auto: ONNX Runtime on a machine without CUDA
    assert len(auto_scores) == scored and all(0.0 <= v <= 5.0 for v in auto_scores.values())
    assert len(set(auto_scores.values())) > 1
    checks = to_arrow(str(tables / "dq_results"), columns=["table", "success", "severity"]).to_pylist()
    gated = {c["table"].rsplit("/", 1)[-1].rsplit(".", 1)[-1] for c in checks}
    assert {"documents", "filtered", "deduped", "scored"} <= gated, gated
    errors = [c for c in checks if not c["success"] and c["severity"] == "error"]
    assert not errors, errors
    assert list((tmp_path / "data").rglob("train-*.bin")), "export wrote no shards"

    torch = _run(tmp_path, corpus, "score.backend=torch", stages="ingest,filter,dedup,score")
    assert torch.returncode == 0, torch.stderr[-4000:]
    for stage in ("ingest", "filter", "dedup"):
        assert _rows(torch.stdout, stage)[2] == 0, (stage, torch.stdout[-3000:])
    assert _rows(torch.stdout, "score")[2] == scored  # a changed backend is a changed config: rescored
    torch_scores = scores()
    assert torch_scores.keys() == auto_scores.keys()
    assert max(abs(auto_scores[k] - torch_scores[k]) for k in torch_scores) < 1e-4
