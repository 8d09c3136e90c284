"""The ingest stage end to end: real files -> Delta, nothing lost, nothing doubled, lineage in MLflow."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tests.conftest import shared_data

from slm_curator import delta
from slm_curator.ingest.readers import QUARANTINE_REASONS, parse_file
from slm_curator.ingest.stage import list_input_files, reader_options, run_ingest
from slm_curator.pipeline import run_pipeline

pytestmark = pytest.mark.spark


def _with_input(cfg, inputs):
    return dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, input=[str(p) for p in inputs]))


def _tables(spark, cfg):
    return (
        delta.read(spark, delta.table_ref(cfg.storage, "documents")),
        delta.read(spark, delta.table_ref(cfg.storage, "quarantine")),
    )


def test_shared_web_warc_html_land_in_delta_with_every_record_accounted_for(spark, cfg):
    inputs = [shared_data("web"), shared_data("warc"), shared_data("html")]
    cfg = _with_input(cfg, inputs)
    files = list_input_files(cfg.ingest.input)
    expected_records = sum(1 for f in files for _ in parse_file(f, reader_options(cfg.ingest)))

    first = run_ingest(spark, cfg, run_id="test-run", files=files)
    docs, quarantine = _tables(spark, cfg)
    n_docs, n_quarantine = docs.count(), quarantine.count()
    assert first.records == expected_records
    assert n_docs + n_quarantine == expected_records
    assert n_docs == first.documents_inserted > 2500
    assert docs.select("doc_id").distinct().count() == n_docs
    assert {r[0] for r in quarantine.select("reason").distinct().collect()} <= set(QUARANTINE_REASONS)
    assert first.quarantined["empty_text"] >= 27
    assert docs.where("text IS NULL OR trim(text) = ''").count() == 0
    assert {r[0] for r in docs.select("format").distinct().collect()} == {"jsonl", "warc", "html"}

    # the same table through delta-rs, as Spark-free consumers read it
    arrow = delta.to_arrow(delta.table_ref(cfg.storage, "documents").identifier, columns=["doc_id", "text"])
    assert arrow.num_rows == n_docs
    assert set(arrow.column("doc_id").to_pylist()) == {r[0] for r in docs.select("doc_id").collect()}

    # a second ingest of the same files reads nothing: the manifest knows them
    versions = (first.documents_version, first.quarantine_version)
    second = run_ingest(spark, cfg, run_id="test-run-2", files=files)
    assert (second.files_skipped, second.records, second.documents_inserted) == (len(files), 0, 0)
    assert (second.documents_version, second.quarantine_version) == versions

    # forced to re-read them, the insert-only merges still add nothing and commit nothing
    forced = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, skip_unchanged_files=False))
    third = run_ingest(spark, forced, run_id="test-run-3", files=files)
    assert third.records == expected_records and third.documents_inserted == 0
    assert third.documents_already_present == n_docs
    assert (third.documents_version, third.quarantine_version) == versions
    docs2, quarantine2 = _tables(spark, cfg)
    assert (docs2.count(), quarantine2.count()) == (n_docs, n_quarantine)


def test_a_changed_file_is_read_again_and_only_its_new_records_land(spark, cfg, tmp_path):
    import os

    src = tmp_path / "grow.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"doc {i}"}) + "\n" for i in range(5)))
    other = tmp_path / "same.jsonl"
    other.write_text(json.dumps({"id": "x", "text": "stays"}) + "\n")
    cfg = _with_input(cfg, [src, other])
    first = run_ingest(spark, cfg, run_id="r1")
    assert (first.files, first.files_skipped, first.documents_inserted) == (2, 0, 6)
    with open(src, "a") as fh:
        fh.write(json.dumps({"id": 99, "text": "appended later"}) + "\n")
    os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 1_000_000_000))
    second = run_ingest(spark, cfg, run_id="r2")
    assert (second.files, second.files_skipped, second.records) == (2, 1, 6)
    assert (second.documents_inserted, second.documents_already_present) == (1, 5)
    manifest = delta.read(spark, delta.table_ref(cfg.storage, "ingest_files"))
    assert manifest.where(f"path = '{src}'").count() == 2  # one row per fingerprint seen


def test_broken_inputs_go_to_quarantine_with_raw_record_file_and_offset(spark, cfg, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(
        b'{"id": "1", "text": "a fine document"}\n'
        b'{"id": "2", "text": "broken\n'
        b'{"id": "1", "text": "same id again"}\n'
        b'{"id": "3", "text": "\xff\xfe"}\n'
    )
    (folder / "b.csv").write_text("id,text\nc1,csv document\nc2\n")
    (folder / "c.xyz").write_text("what is this")
    (folder / "_SUCCESS").write_text("")
    cfg = _with_input(cfg, [folder])
    result = run_ingest(spark, cfg, run_id="r1")
    assert result.files == 3
    assert result.quarantined == {
        "bad_json": 1,
        "duplicate_id": 1,
        "undecodable_bytes": 1,
        "bad_csv_row": 1,
        "unsupported_format": 1,
    }
    docs, quarantine = _tables(spark, cfg)
    assert sorted(r[0] for r in docs.select("text").collect()) == ["a fine document", "csv document"]
    bad = {r["reason"]: r for r in quarantine.collect()}
    assert bad["bad_json"]["file"].endswith("a.jsonl") and bad["bad_json"]["offset"] == 2
    assert bad["bad_json"]["raw"].startswith('{"id": "2"')
    assert bad["duplicate_id"]["offset"] == 3 and "same id again" in bad["duplicate_id"]["raw"]
    assert all(r["run_id"] == "r1" and r["ingested_at"] is not None for r in quarantine.collect())


def test_pipeline_run_is_tracked_with_dataset_lineage(spark, cfg, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"document number {i}"}) + "\n" for i in range(20)))
    cfg = _with_input(cfg, [src])
    (summary,) = run_pipeline(cfg, stages=["ingest"], spark=spark)
    assert (summary.input_rows, summary.new_rows) == (20, 20)

    client = MlflowClient(mlflow.get_tracking_uri())
    assert mlflow.get_tracking_uri().startswith("sqlite:///" + cfg.storage.root)
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.info.run_name == "pipeline")
    child = next(r for r in runs if r.info.run_name == "ingest")
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.params["ingest.text_field"] == "text"
    assert child.data.params["maven.packages.delta"] == cfg.maven.packages["delta"]
    assert child.data.metrics["records"] == 20 and child.data.metrics["documents_inserted"] == 20
    inputs = {d.dataset.name: d for d in child.inputs.dataset_inputs}
    assert set(inputs) == {"documents", "quarantine"}
    docs_input = inputs["documents"]
    assert (
        json.loads(docs_input.dataset.source)["path"] == delta.table_ref(cfg.storage, "documents").identifier
    )
    assert {t.key: t.value for t in docs_input.tags}["delta_version"] == "0"
    assert {t.key: t.value for t in docs_input.tags}["mlflow.data.context"] == "output"
    assert child.data.tags["output.documents"].endswith("@v0")

    # re-running is a no-op that says so
    (again,) = run_pipeline(cfg, stages=["ingest"], spark=spark)
    assert again.new_rows == 0 and "nothing new" in again.notes[0]
