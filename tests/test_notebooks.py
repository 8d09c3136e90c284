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
    cfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, input=[str(corpus)]))
    run_pipeline(cfg, stages=["ingest", "filter"], spark=spark)
    for notebook in sorted((ROOT / "notebooks").glob("*.py")):
        monkeypatch.setattr(sys, "argv", [str(notebook), f"storage.root={cfg.storage.root}"])
        runpy.run_path(str(notebook), run_name="__main__")
    out = capsys.readouterr().out
    assert "documents," in out and "kept" in out  # 02's header line
    assert "rule_keep@50" in out and "chars_p10_p50_p90" in out  # 02 sweep, 01 length quantiles
    assert "reason" in out and "operationMetrics" in out  # quarantine reasons and table history
