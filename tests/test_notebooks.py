"""The analysts' notebooks run top to bottom against tables the pipeline wrote (locally, as scripts)."""

from __future__ import annotations

import dataclasses
import runpy
import sys

import pytest
from tests.conftest import ROOT

from slm_curator.pipeline import run_pipeline
from slm_curator.sample_corpus import write_sample_corpus

pytestmark = pytest.mark.spark


def test_notebooks_run_on_pipeline_output(spark, cfg, tmp_path, monkeypatch, capsys):
    corpus = write_sample_corpus(tmp_path / "corpus", documents=200)
    cfg = dataclasses.replace(
        cfg,
        ingest=dataclasses.replace(cfg.ingest, input=[str(corpus)]),
        checks=dataclasses.replace(cfg.checks, enabled=True, data_docs=False),  # 03 reads dq_results
    )
    run_pipeline(cfg, stages=["ingest", "filter", "dedup", "score"], spark=spark)
    # The same input and config again: every stage says so, and the gates reuse their stored verdicts.
    again = run_pipeline(cfg, stages=["ingest", "filter", "dedup", "score", "validate"], spark=spark)
    assert all(any(n.startswith("nothing new") for n in s.notes) for s in again[:4])
    assert [s.new_rows for s in again] == [0, 0, 0, 0, 0]
    checks = [c for s in again for c in s.checks if c.startswith("checks ") and "@v" in c]
    assert len(checks) == 8 and all(c.endswith("(stored verdict)") for c in checks), checks
    for notebook in sorted((ROOT / "notebooks").glob("*.py")):
        monkeypatch.setattr(sys, "argv", [str(notebook), f"storage.root={cfg.storage.root}"])
        runpy.run_path(str(notebook), run_name="__main__")
    out = capsys.readouterr().out
    assert "documents," in out and "kept" in out  # 02's header line
    assert "rule_keep@50" in out and "chars_p10_p50_p90" in out  # 02 sweep, 01 length quantiles
    assert "reason" in out and "operationMetrics" in out  # quarantine reasons and table history
    assert "documents" in out and "filtered" in out and "not_passed" in out  # 03: verdicts per suite
    assert "cluster_size" in out and "jaccard_decile" in out and "duplicate_rate" in out  # 04
    assert "quality_model_version" in out and "spearman_with_score" in out  # 05
