"""Labels, training and scoring end to end on Delta tables and a local MLflow registry.

Small on purpose (2 cores): ~200 real annotated web documents cut to 1,200 characters, one 128-token
chunk each. What is checked is the wiring and the contracts: label sources in one schema with a fixed
split, unparseable LLM answers kept and counted, a registered model with an alias and held-out
metrics against length, row counts that never change, and re-runs that do nothing.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re

import mlflow
import pytest
from pyspark.sql import functions as F
from tests.conftest import shared_data
from tests.test_judge_client import ScriptedServer, ok

from slm_curator import delta
from slm_curator.config import ImportedLabels
from slm_curator.errors import ConfigError
from slm_curator.pipeline import run_pipeline

pytestmark = [pytest.mark.spark, pytest.mark.model]


def _jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def corpora():
    with gzip.open(shared_data("quality", "fineweb_edu_llama3_scored_3k.jsonl.gz"), "rt") as f:
        annotated = [json.loads(line) for line in f][:220]
    with gzip.open(shared_data("quality", "alpaca_eval_gpt4_turbo_outputs.jsonl.gz"), "rt") as f:
        reference = [json.loads(line) for line in f][:30]
    for r in annotated:
        r["text"] = r["text"][:1200]
    return annotated, reference


def _documents(spark, cfg, texts, table="documents", keep=None):
    rows = [
        (f"d{i}", "web_pages" if i % 2 else "forum", t, t, True if keep is None else keep[i])
        for i, t in enumerate(texts)
    ]
    frame = spark.createDataFrame(
        rows, "doc_id string, source string, text string, text_clean string, keep boolean"
    )
    delta.write(frame, delta.table_ref(cfg.storage, table), "overwrite")


def _quality_cfg(cfg, tmp_path, annotated, reference, **annotate):
    imported = _jsonl(
        tmp_path / "annotated.jsonl", [{"text": r["text"], "score": r["score"]} for r in annotated]
    )
    ref = _jsonl(tmp_path / "reference.jsonl", [{"answer": r["text"]} for r in reference])
    labels = dataclasses.replace(
        cfg.quality.labels,
        imported=[ImportedLabels(path=imported, name="edu")],
        reference=dataclasses.replace(
            cfg.quality.labels.reference, paths=[ref], text_field="answer", weight=0.5
        ),
        annotate=dataclasses.replace(cfg.quality.labels.annotate, **annotate),
    )
    model = dataclasses.replace(
        cfg.quality.model, max_tokens=128, max_chunks=1, alpha=100.0, register_as="test-quality"
    )
    score = dataclasses.replace(cfg.score, batch_docs=64, threads=1)
    return dataclasses.replace(
        cfg, quality=dataclasses.replace(cfg.quality, labels=labels, model=model), score=score
    )


def _judge_step(request):
    text = request["messages"][-1]["content"]
    if "water" in text.lower():
        return ok("It teaches a science topic.\nEducational score: 4")
    if "price" in text.lower():
        return ok("A shop page. I would not use it in class.")  # no score line: unparseable
    return ok("Mostly unrelated to school topics.\nEducational score: 1")


def test_labels_train_and_score_end_to_end(spark, cfg, tmp_path, corpora):
    annotated, reference = corpora
    web = [r["text"] for r in annotated[200:220]]
    server = ScriptedServer()
    server.script = [_judge_step]
    try:
        judge = dataclasses.replace(
            cfg.quality.labels.annotate.judge, base_url=server.url, model="scripted", concurrency=2
        )
        qcfg = _quality_cfg(
            cfg, tmp_path, annotated[:200], reference, enabled=True, table="deduped", sample=6, judge=judge
        )
        docs = [
            "Water evaporates from the sea, condenses into clouds and falls as rain.",
            "Best price on shoes! Buy now, free shipping, price match guaranteed.",
            "Lorem ipsum menu home contact login.",
            *web[:9],
        ]
        _documents(spark, qcfg, web, "documents")
        keep = [i != 5 for i in range(len(docs))]  # one non-representative row: not scored, not in scored
        _documents(spark, qcfg, docs, "deduped", keep=keep)

        summaries = run_pipeline(qcfg, stages=["labels", "train_quality"], spark=spark)
        labels = delta.read(spark, delta.table_ref(qcfg.storage, "quality_labels"))
        by_source = {r["source"]: r["count"] for r in labels.groupBy("source").count().collect()}
        assert by_source == {"edu": 200, "reference": 30, "reference_web": 20, "llm_scripted": 6}
        llm = {r["text"]: r for r in labels.where(F.col("kind") == "llm").collect()}
        assert llm[docs[0]]["label"] == 4.0 and llm[docs[0]]["ok"]
        shop = llm[docs[1]]
        assert not shop["ok"] and shop["label"] is None and "would not use it" in shop["answer"]
        assert "1 unparseable" in summaries[0].details["llm_scripted"]
        splits = {r["split"]: r["count"] for r in labels.groupBy("split").count().collect()}
        assert 0.1 < splits["test"] / sum(splits.values()) < 0.3
        assert labels.select("label_id").distinct().count() == labels.count()

        train = summaries[1]
        assert train.location.startswith("models:/test-quality@champion")
        assert "spearman" in train.details["edu"] and "auc_length" in train.details["edu"]
        assert "auc_any" in train.details["edu"] and "auc_any_length" in train.details["edu"]
        assert "reference_vs_web" in train.details
        client = mlflow.MlflowClient()
        version = client.get_model_version_by_alias("test-quality", "champion")
        run = client.get_run(version.run_id)
        assert "edu.spearman" in run.data.metrics and "edu.spearman_length" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(version.run_id)}
        assert {"quality_confusion.png", "quality_metrics.json"} <= artifacts

        # Same labels version and config: the labels table and the registered model stay as they are.
        labels_version = delta.current_version(spark, delta.table_ref(qcfg.storage, "quality_labels"))
        again = run_pipeline(qcfg, stages=["labels", "train_quality"], spark=spark)
        assert any("nothing new" in n for n in again[0].notes) and any(
            "nothing new" in n for n in again[1].notes
        )
        assert delta.current_version(spark, delta.table_ref(qcfg.storage, "quality_labels")) == labels_version
        assert len(client.search_model_versions("name = 'test-quality'")) == 1
    finally:
        server.close()

    scfg = dataclasses.replace(
        qcfg, score=dataclasses.replace(qcfg.score, model="models:/test-quality@champion")
    )
    (summary,) = run_pipeline(scfg, stages=["score"], spark=spark)
    scored = {r["doc_id"]: r for r in delta.read(spark, delta.table_ref(scfg.storage, "scored")).collect()}
    assert len(scored) == len(docs) - 1 and "d5" not in scored  # the selected rows, every one
    assert summary.input_rows == summary.output_rows == len(docs) - 1
    for r in scored.values():
        assert 0.0 <= r["quality_score"] <= 5.0
        assert r["quality_int"] == min(max(round(r["quality_score"]), 0), 5)
        assert r["quality_model"] == "models:/test-quality@champion" and r["quality_model_version"] == "1"
        assert r["text_clean"] is not None and r["source"] in ("forum", "web_pages")
    assert re.search(
        r"(forum|web_pages) \[\d+ \d+ \d+ \d+ \d+\]", summary.details["scores by source (0-1 ... 4-5)"]
    )
    # The pyfunc model in the registry gives the stage's scores.
    pyfunc = mlflow.pyfunc.load_model("models:/test-quality@champion")
    import pandas as pd

    direct = pyfunc.predict(pd.DataFrame({"text": [docs[0], docs[2]]}))["quality_score"].tolist()
    assert direct == pytest.approx([scored["d0"]["quality_score"], scored["d2"]["quality_score"]], abs=1e-4)

    version = delta.current_version(spark, delta.table_ref(scfg.storage, "scored"))
    (rerun,) = run_pipeline(scfg, stages=["score"], spark=spark)
    assert rerun.new_rows == 0 and any("nothing new" in n for n in rerun.notes)
    assert delta.current_version(spark, delta.table_ref(scfg.storage, "scored")) == version


def test_score_with_the_packaged_default_model_and_its_gate(spark, cfg, corpora):
    annotated, _ = corpora
    texts = [r["text"] for r in annotated[:8]] + ["", "menu | home | login"]
    _documents(spark, cfg, texts, "deduped")
    gated = dataclasses.replace(
        cfg,
        checks=dataclasses.replace(cfg.checks, enabled=True, data_docs=False),
        score=dataclasses.replace(cfg.score, threads=1, model=""),
    )
    (summary,) = run_pipeline(gated, stages=["score"], spark=spark)
    assert summary.output_rows == len(texts)
    assert any("scored@v0: passed" in c or "passed" in c for c in summary.checks), summary.checks
    rows = delta.read(spark, delta.table_ref(cfg.storage, "scored")).collect()
    assert {r["quality_model"] for r in rows} == {"package:slm_curator/quality/default_model"}
    assert all(0 <= r["quality_score"] <= 5 for r in rows)
    # The default model was trained on FineWeb-Edu annotations: a tutorial outranks a login menu.
    by_text = {r["text_clean"]: r["quality_score"] for r in rows}
    tutorial = max(texts[:8], key=lambda t: [a["score"] for a in annotated[:8] if a["text"] == t][0])
    assert by_text[tutorial] > by_text["menu | home | login"]


def test_score_errors_name_the_problem(spark, cfg, tmp_path):
    _documents(spark, cfg, ["some text"], "deduped")
    bad_column = dataclasses.replace(cfg, score=dataclasses.replace(cfg.score, text_column="body"))
    with pytest.raises(ConfigError, match="score.text_column: 'body'.*allowed values"):
        run_pipeline(bad_column, stages=["score"], spark=spark)
    missing = dataclasses.replace(cfg, score=dataclasses.replace(cfg.score, model=str(tmp_path / "nope")))
    with pytest.raises(FileNotFoundError, match="score.model"):
        run_pipeline(missing, stages=["score"], spark=spark)
    with pytest.raises(ConfigError, match="quality.labels: no source configured"):
        run_pipeline(cfg, stages=["labels"], spark=spark)
