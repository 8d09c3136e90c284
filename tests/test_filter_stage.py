"""The filter stage in Spark: every document kept with signals, idempotent, dry run, MLflow records."""

from __future__ import annotations

import dataclasses

import pytest

from slm_curator import delta
from slm_curator.filters.document import analyze, signal_names
from slm_curator.pipeline import filter_stage, ingest_stage
from slm_curator.sample_corpus import write_sample_corpus
from slm_curator.tracking import Tracker

pytestmark = pytest.mark.spark


@pytest.fixture
def ingested(spark, cfg, tmp_path):
    corpus = write_sample_corpus(tmp_path / "corpus", documents=300)
    cfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, input=[str(corpus)]))
    tracker = Tracker(cfg)
    with tracker.pipeline_run("test"):
        ingest_stage(spark, cfg, tracker)
    return cfg, tracker


def test_filter_keeps_every_document_with_signals_and_matches_the_pure_function(spark, ingested):
    cfg, tracker = ingested
    with tracker.pipeline_run("test"):
        summary = filter_stage(spark, cfg, tracker)
    docs = delta.read(spark, delta.table_ref(cfg.storage, "documents"))
    filtered = delta.read(spark, delta.table_ref(cfg.storage, "filtered"))
    assert filtered.count() == docs.count() == summary.input_rows
    assert filtered.select("doc_id").distinct().count() == docs.count()
    assert set(filtered.select("signals.*").columns) == set(signal_names(cfg.filter))
    assert filtered.where("keep <> (size(drop_reasons) = 0)").count() == 0
    assert 0 < summary.output_rows < summary.input_rows
    langs = {r[0] for r in filtered.select("language").distinct().collect()}
    assert {"en", "de", "fr", "es"} <= langs

    # Spark's result is the pure function's result
    for row in filtered.orderBy("doc_id").limit(25).collect():
        expected = analyze(row["text"], cfg.filter)
        assert row["drop_reasons"] == expected.reasons
        assert row["text_clean"] == expected.text_clean
        assert row["signals"]["n_tokens"] == expected.signals["n_tokens"]


def test_rerun_is_a_no_op_and_config_change_recomputes(spark, ingested):
    cfg, tracker = ingested
    with tracker.pipeline_run("test"):
        first = filter_stage(spark, cfg, tracker)
        again = filter_stage(spark, cfg, tracker)
    assert again.version == first.version and "nothing new" in again.notes[0]
    assert again.output_rows == first.output_rows

    looser = dataclasses.replace(
        cfg,
        filter=dataclasses.replace(
            cfg.filter, gopher=dataclasses.replace(cfg.filter.gopher, min_doc_words=1)
        ),
    )
    with tracker.pipeline_run("test"):
        changed = filter_stage(spark, looser, tracker)
    assert changed.version == first.version + 1
    assert changed.details.get("dropped:gopher_short_doc", 0) < first.details.get(
        "dropped:gopher_short_doc", 0
    )


def test_dry_run_reports_without_writing(spark, ingested):
    cfg, tracker = ingested
    with tracker.pipeline_run("test"):
        summary = filter_stage(spark, cfg, tracker, dry_run=True)
    assert not delta.exists(spark, delta.table_ref(cfg.storage, "filtered"))
    assert summary.details and summary.output_rows < summary.input_rows
    assert "dry run" in summary.notes[-1]


def test_dry_run_after_a_real_run_still_reports_every_document(spark, ingested):
    cfg, tracker = ingested
    with tracker.pipeline_run("test"):
        real = filter_stage(spark, cfg, tracker)
        dry = filter_stage(spark, cfg, tracker, dry_run=True)
    assert (dry.input_rows, dry.output_rows, dry.details) == (real.input_rows, real.output_rows, real.details)
    assert dry.new_rows == 0 and dry.version is None


def test_drop_counts_and_histograms_go_to_mlflow(spark, ingested):
    import mlflow
    from mlflow.tracking import MlflowClient

    cfg, tracker = ingested
    with tracker.pipeline_run("test"):
        summary = filter_stage(spark, cfg, tracker)
    client = MlflowClient(mlflow.get_tracking_uri())
    run = next(r for r in client.search_runs([tracker.experiment_id]) if r.info.run_name == "filter")
    metrics = run.data.metrics
    assert metrics["documents"] == summary.input_rows and metrics["kept"] == summary.output_rows
    for key, n in summary.details.items():
        assert metrics[f"dropped_{key.split(':', 1)[1]}"] == n
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"filter_signal_histograms.png", "filter_signal_histograms.json"} <= artifacts
    names = {d.dataset.name: {t.key: t.value for t in d.tags} for d in run.inputs.dataset_inputs}
    assert names["documents"]["mlflow.data.context"] == "input"
    assert names["filtered"]["mlflow.data.context"] == "output"


def test_new_documents_are_analysed_incrementally(spark, ingested, tmp_path):
    import json

    cfg, tracker = ingested
    with tracker.pipeline_run("test"):
        first = filter_stage(spark, cfg, tracker)
    more = tmp_path / "more.jsonl"
    more.write_text(
        "".join(json.dumps({"id": f"m{i}", "text": f"A new document number {i}."}) + "\n" for i in range(7))
    )
    extra = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, input=[str(more)]))
    with tracker.pipeline_run("test"):
        ingest_stage(spark, extra, tracker)
        second = filter_stage(spark, cfg, tracker)
    assert second.new_rows == 7 and second.input_rows == first.input_rows + 7
    filtered = delta.read(spark, delta.table_ref(cfg.storage, "filtered"))
    assert filtered.count() == filtered.select("doc_id").distinct().count() == first.input_rows + 7
    assert second.version == first.version + 1
