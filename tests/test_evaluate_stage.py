"""The evaluate stage end to end against a scripted OpenAI-compatible judge on loopback."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tests.test_judge_client import Reply, ScriptedServer
from tests.test_train_job import _shard_folder

from slm_curator import delta
from slm_curator.pipeline import run_pipeline

pytestmark = pytest.mark.spark

RUBRIC_ANSWER = "grammar: 7\ncreativity: 5\nconsistency: 6\nplot: 4"


def position_biased_judge():
    """Grades every story the same, answers junk to every 5th rubric request, and always picks "A"."""
    count = {"rubric": 0}

    def step(request):
        if "grades short stories" in request["messages"][0]["content"]:
            count["rubric"] += 1
            text = "It is a nice story!" if count["rubric"] % 5 == 0 else RUBRIC_ANSWER
        else:
            text = "A"
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        return Reply(body=json.dumps(body).encode())

    return step


@pytest.fixture
def judge():
    server = ScriptedServer()
    server.script = [position_biased_judge()]
    yield server
    server.close()


def _two_checkpoints(cfg, tmp_path):
    from slm_curator.tracking import Tracker
    from slm_curator.train.job import run_train

    folder = _shard_folder(tmp_path, val_rows=60)
    t = dataclasses.replace(
        cfg.train,
        shards=str(folder),
        model={"n_layer": 1, "n_embd": 32, "n_head": 2, "n_kv_head": 1},
        micro_batch=4,
        max_steps=20,
        warmup_steps=2,
        eval_every=10,
        checkpoint_every=10,
        keep_every=10,
        eval_batches=2,
    )
    cfg = dataclasses.replace(cfg, train=t, tracking=dataclasses.replace(cfg.tracking, enabled=False))
    run_train(cfg, Tracker(cfg))
    return cfg


def test_evaluate_judges_two_checkpoints_and_reruns_pay_nothing(spark, cfg, tmp_path, judge):
    cfg = _two_checkpoints(cfg, tmp_path)
    e = dataclasses.replace(
        cfg.evaluate,
        num_prompts=6,
        prompt_words=12,
        max_new_tokens=12,
        sanity_pairs=4,
        bootstrap=200,
        judge=dataclasses.replace(cfg.evaluate.judge, base_url=judge.url, model="scripted", concurrency=2),
    )
    cfg = dataclasses.replace(cfg, evaluate=e, tracking=dataclasses.replace(cfg.tracking, enabled=True))
    (summary,) = run_pipeline(cfg, stages=["evaluate"], spark=spark)
    text = "\n".join(summary.notes)
    assert "step-10" in text and "step-20" in text
    # Always "A" means every pair flips with the order: all ties, chance-level sanity, and a warning.
    assert "sanity (judge): prefers the real continuation 50% of 4 pairs" in text
    assert "not clearly better than chance" in text

    generations = delta.read(spark, delta.table_ref(cfg.storage, "generations")).toPandas()
    assert len(generations) == 2 * 6 and set(generations["model"]) == {"step-10", "step-20"}
    judgments = delta.read(spark, delta.table_ref(cfg.storage, "judgments")).toPandas()
    kinds = judgments["kind"].value_counts().to_dict()
    assert kinds == {"rubric": 12, "pairwise": 12, "sanity": 8}
    rubric = judgments[judgments["kind"] == "rubric"]
    failed = rubric[rubric["parse_error"].notna()]
    assert len(failed) == 2 and (failed["raw_answer"] == "It is a nice story!").all()  # stored, not guessed
    assert all(
        s == {"grammar": 7.0, "creativity": 5.0, "consistency": 6.0, "plot": 4.0}
        for s in rubric[rubric["parse_error"].isna()]["scores"]
    )
    assert set(judgments.loc[judgments["kind"] == "pairwise", "verdict"]) == {"tie"}
    requests = len(judge.requests)

    import mlflow

    (run,) = mlflow.search_runs(
        experiment_names=[cfg.tracking.experiment],
        filter_string="tags.stage = 'evaluate'",
        output_format="list",
    )
    assert run.data.metrics["sanity_judge_accuracy"] == 0.5 and run.data.metrics["parse_failures"] == 2
    assert run.data.metrics["step-20/grammar"] == 7.0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/report.csv", "evaluation/rubric_scores.png", "evaluation/ratings.png"} <= artifacts
    assert {d.dataset.name for d in run.inputs.dataset_inputs} >= {"generations", "judgments"}

    # Same models, prompts and judge: no new rows, no new table versions, no judge calls.
    versions = [
        delta.current_version(spark, delta.table_ref(cfg.storage, n)) for n in ("generations", "judgments")
    ]
    (again,) = run_pipeline(cfg, stages=["evaluate"], spark=spark)
    assert len(judge.requests) == requests
    assert "nothing new: generations and judgments already hold all of these" in again.notes
    assert versions == [
        delta.current_version(spark, delta.table_ref(cfg.storage, n)) for n in ("generations", "judgments")
    ]


def test_with_the_local_judge_only_signal_and_a_wiring_probe_run(spark, cfg, tmp_path):
    """Gemma 3 270M (a base model) grades nothing: reference likelihoods, their sanity check, a 2-prompt probe."""
    cfg = _two_checkpoints(cfg, tmp_path)
    e = dataclasses.replace(cfg.evaluate, num_prompts=4, prompt_words=12, max_new_tokens=8, sanity_pairs=3)
    cfg = dataclasses.replace(cfg, evaluate=e)
    (summary,) = run_pipeline(cfg, stages=["evaluate"], spark=spark)
    text = "\n".join(summary.notes)
    assert "only a 2-prompt rubric probe runs" in text
    assert "sanity (reference_model): prefers the real continuation" in text and "sanity (judge)" not in text
    judgments = delta.read(spark, delta.table_ref(cfg.storage, "judgments")).toPandas()
    assert judgments["kind"].value_counts().to_dict() == {"rubric": 2}  # no pairwise, no judge sanity pairs
    assert set(judgments["model"]) == {"step-20"}  # the probe grades the final model
    report = {line.split()[0]: line for line in summary.notes if line.startswith("step-")}
    assert all("[" in report[m] for m in ("step-10", "step-20"))  # each model has its reference likelihood
