"""The filter stage in Spark: every document kept with signals, idempotent, dry run, MLflow records."""

from __future__ import annotations

import dataclasses

import pytest

from slm_curator import delta
from slm_curator.filters.document import analyze, signal_names
from slm_curator.pipeline import STAGES
from slm_curator.sample_corpus import write_sample_corpus
from slm_curator.stage import run_stage
from slm_curator.tracking import Tracker

pytestmark = pytest.mark.spark


def ingest_stage(spark, cfg, tracker):
    return run_stage(STAGES[0], spark, cfg, tracker, STAGES)


def filter_stage(spark, cfg, tracker, dry_run=False):
    return run_stage(STAGES[1], spark, cfg, tracker, STAGES, {"dry_run": dry_run})


@pytest.fixture
def ingested(spark, cfg, tmp_path, request):
    size = getattr(request, "param", 300)
    corpus = write_sample_corpus(tmp_path / "corpus", documents=size)
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


@pytest.mark.parametrize("ingested", [80], indirect=True)
def test_every_family_off_and_a_new_ngram_size_pass_the_gates_and_validate(spark, ingested):
    """The documented switches each produce a `filtered` table its gate accepts (derived expectations).

    Two runs: every family is off in one and on in the other (tests/test_stage_contract.py derives each
    family-off suite alone, without Spark); the new n-gram size goes where gopher_repetition is on."""
    from tests.conftest import ROOT

    from slm_curator.config import load_config
    from slm_curator.filters.registry import FAMILIES
    from slm_curator.pipeline import run_pipeline

    cfg, _ = ingested
    first_off = {"c4", "language", "bad_words"}
    assert first_off < {f.name for f in FAMILIES}
    variants = [
        [f"filter.{name}.enabled=false" for name in sorted(first_off)]
        + ["filter.gopher_repetition.top_n_grams.5=0.15"],
        [f"filter.{f.name}.enabled=false" for f in FAMILIES if f.name not in first_off],
    ]
    for override in variants:
        variant = load_config("local", override, conf_dir=ROOT / "conf")
        variant = dataclasses.replace(
            cfg,
            filter=variant.filter,
            checks=dataclasses.replace(cfg.checks, enabled=True, data_docs=False),
            tracking=dataclasses.replace(cfg.tracking, enabled=False),
        )
        (summary,) = run_pipeline(variant, stages=["filter"], spark=spark)
        assert summary.checks and "error" not in summary.checks[0], (override, summary.checks)
        columns = set(delta.read(spark, delta.table_ref(cfg.storage, "filtered")).select("signals.*").columns)
        assert columns == set(signal_names(variant.filter)), override
    # validate, run with the default config, checks the table with the config it was written with
    default = dataclasses.replace(variant, filter=load_config("local", conf_dir=ROOT / "conf").filter)
    (validated,) = run_pipeline(default, stages=["validate"], spark=spark)
    filtered = next(c for c in validated.checks if c.startswith("checks filtered@"))
    assert "error" not in filtered and "stored verdict" in filtered, validated.checks


def test_filter_reads_any_table_and_rows_chosen_by_config(spark, ingested):
    from slm_curator.pipeline import run_pipeline

    cfg, _ = ingested
    docs = delta.read(spark, delta.table_ref(cfg.storage, "documents"))
    source = docs.select("source").first()["source"]
    chosen = dataclasses.replace(cfg, filter=dataclasses.replace(cfg.filter, where=f"source = '{source}'"))
    (summary,) = run_pipeline(chosen, stages=["filter"], spark=spark)
    assert summary.input_rows == docs.where(f"source = '{source}'").count() < docs.count()
    # a rewritten input table is re-analysed whole (not treated as a table that only grew)
    delta.write(docs.limit(5), delta.table_ref(cfg.storage, "documents"), "overwrite")
    (again,) = run_pipeline(cfg, stages=["filter"], spark=spark)
    assert again.input_rows == 5 and again.new_rows == 5
