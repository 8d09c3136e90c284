"""The ablation end to end, small: two arms, one seed, a few steps, on tables written here.

What it checks is what a user relies on: the held-out sets never reach an arm, every arm sees the same
tokens, the `ablation` table and the MLflow parent/child runs and the figures exist, a re-run adds
nothing and retrains nothing, and a changed arm reruns only itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest
from tests.test_export import _export_cfg, _sentences

from slm_curator import delta
from slm_curator.config import AblationArm, ConfigError

pytestmark = pytest.mark.spark

CLEAN = [
    "The old lighthouse keeper climbed the stairs every evening. He lit the lamp and watched the ships.",
    "A river runs past the mill. In spring the water rises and the wheel turns faster than before.",
    "The children walked to school along the hedge. They counted birds and talked about the weather.",
    "Bread is made from flour, water, salt and yeast. The dough rises when it is left somewhere warm.",
]


def _write_tables(spark, cfg, n: int = 240) -> pd.DataFrame:
    """`documents` (raw text) and `scored` (cleaned, kept, scored): learnable sentences and junk rows."""
    rng = random.Random(5)
    rows = []
    for i in range(n):
        junk = i % 3 == 0
        text = (
            " ".join(f"{rng.randint(0, 9999)} | {rng.choice('#@%&*')} click here" for _ in range(12))
            if junk
            else _sentences(rng, rng.randint(3, 12))
        )
        rows.append(
            {
                "doc_id": f"d{i:04d}",
                "source": "web",
                "text": text,
                "text_clean": text,
                "keep": True,
                "cluster_id": f"d{i:04d}",
                "quality_score": round(rng.uniform(0, 1.5) if junk else rng.uniform(2, 5), 3),
            }
        )
    rows.append({**rows[1], "doc_id": "dup-of-clean", "text": CLEAN[2], "text_clean": CLEAN[2]})
    frame = pd.DataFrame(rows)
    docs = spark.createDataFrame(frame[["doc_id", "source", "text"]])
    delta.write(docs, delta.table_ref(cfg.storage, "documents"), "overwrite")
    scored = spark.createDataFrame(frame.drop(columns=["text"]))
    delta.write(scored, delta.table_ref(cfg.storage, "scored"), "overwrite")
    return frame


def _ablation_cfg(cfg, tmp_path: Path, **ablation):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "reference.txt").write_text("\n\n".join(CLEAN) + "\n")
    cfg = _export_cfg(cfg, val_fraction=0.0)
    train = dataclasses.replace(
        cfg.train,
        model={"n_layer": 2, "n_embd": 32, "n_head": 2, "n_kv_head": 1},
        micro_batch=4,
        warmup_steps=2,
        log_every=1,
    )
    a = dataclasses.replace(
        cfg.ablation,
        **{
            "arms": [
                AblationArm("raw", "documents", "", "text"),
                AblationArm("quality", "scored", "keep", top_fraction=0.5),
            ],
            "seeds": [0],
            "steps": 12,
            "warmup_steps": 0,  # train.warmup_steps (2)
            "clean_inputs": [str(clean)],
            "clean_passage_chars": 1,  # one passage per paragraph
            "web_fraction": 0.1,
            "web_max_docs": 10,
            "generation_prompts": 2,
            "prompt_words": 8,
            "max_new_tokens": 6,
            **ablation,
        },
    )
    return dataclasses.replace(cfg, train=train, ablation=a)


def _runs(cfg):
    import mlflow

    return mlflow.search_runs(experiment_names=[cfg.tracking.experiment], output_format="list")


def test_ablation_end_to_end_table_runs_figures_and_resume(spark, cfg, tmp_path):
    import mlflow

    from slm_curator.ablation.job import ablation

    _write_tables(spark, cfg)
    cfg = _ablation_cfg(cfg, tmp_path)
    first = ablation(cfg, spark=spark)

    # Held out: the web sample and the document that repeats a clean passage are in no arm's table.
    raw_ids = {
        r["doc_id"] for r in delta.read(spark, delta.table_ref(cfg.storage, "ablation_arm_raw")).collect()
    }
    held_web = first.held["web"]["documents"]
    assert first.held["clean"]["documents"] == len(CLEAN) and 1 <= held_web <= 10
    assert "dup-of-clean" not in raw_ids and len(raw_ids) in (241 - held_web - 1, 241 - held_web)
    quality = delta.read(spark, delta.table_ref(cfg.storage, "ablation_arm_quality")).toPandas()
    assert (quality["quality_score"] >= 2).all()  # the top half are the learnable rows
    assert "dup-of-clean" not in set(quality["doc_id"])

    # The table: one row per arm and seed, the same tokens seen, finite bits per byte on both sets.
    table = delta.read(spark, delta.table_ref(cfg.storage, "ablation")).toPandas()
    assert sorted(table["arm"]) == ["quality", "raw"] and set(table["seed"]) == {0}
    assert table["tokens_seen"].nunique() == 1 and (table["steps"] == 12).all()
    for column in ("clean_bpb", "web_bpb"):
        assert table[column].map(math.isfinite).all() and (table[column] > 0).all()
    by_arm = table.set_index("arm")
    assert by_arm.loc["quality", "unique_tokens"] < by_arm.loc["raw", "unique_tokens"]
    assert by_arm.loc["quality", "epochs"] > by_arm.loc["raw", "epochs"]
    assert len(json.loads(by_arm.loc["raw", "generations"])) == 2

    # MLflow: one parent run with the report, a child per arm and seed with its whole loss curve.
    runs = _runs(cfg)
    (parent,) = [r for r in runs if r.info.run_name == "ablation"]
    children = {
        r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"raw seed 0", "quality seed 0"}
    client = mlflow.MlflowClient()
    history = client.get_metric_history(children["raw seed 0"].info.run_id, "loss")
    assert [m.step for m in history] == list(range(1, 13))
    assert "clean_bpb" in children["quality seed 0"].data.metrics
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id, "ablation")}
    assert {
        "ablation/bits_per_byte.png",
        "ablation/training_curves.png",
        "ablation/ablation.json",
    } <= artifacts
    for figure in first.figures:
        assert Path(figure).stat().st_size > 5000  # a rendered PNG, not an empty file

    # Re-run: nothing new in the table, nothing retrained (the trainer resumes at its last step).
    again = ablation(cfg, spark=spark)
    assert again.new_rows == 0
    assert all(r["resumed_from"] == 12 for r in again.rows)
    assert len(delta.read(spark, delta.table_ref(cfg.storage, "ablation")).toPandas()) == 2
    assert [r["clean_bpb"] for r in again.rows] == [r["clean_bpb"] for r in first.rows]

    # A changed arm reruns only itself.
    arms = [cfg.ablation.arms[0], dataclasses.replace(cfg.ablation.arms[1], top_fraction=0.3)]
    changed = ablation(
        dataclasses.replace(cfg, ablation=dataclasses.replace(cfg.ablation, arms=arms)), spark=spark
    )
    resumed = {r["arm"]: r["resumed_from"] for r in changed.rows}
    assert resumed == {"raw": 12, "quality": None}
    assert changed.new_rows == 1


def test_ablation_config_errors_name_the_key_and_the_allowed_values(spark, cfg, tmp_path):
    from slm_curator.ablation.job import check_ablation, run_ablation
    from slm_curator.tracking import Tracker

    base = _ablation_cfg(cfg, tmp_path)
    with pytest.raises(ConfigError, match=r"ablation.clean_inputs"):
        check_ablation(
            dataclasses.replace(base, ablation=dataclasses.replace(base.ablation, clean_inputs=[]))
        )
    with pytest.raises(ConfigError, match=r"ablation.baseline_arm: 'nope'.*allowed values: raw, quality"):
        check_ablation(
            dataclasses.replace(base, ablation=dataclasses.replace(base.ablation, baseline_arm="nope"))
        )
    with pytest.raises(ConfigError, match=r"ablation.preset: 'gpt5'.*allowed values: tiny-1m, ts-8m"):
        check_ablation(dataclasses.replace(base, ablation=dataclasses.replace(base.ablation, preset="gpt5")))
    with pytest.raises(ConfigError, match=r"ablation.warmup_steps: must be in \[0, ablation.steps\)"):
        check_ablation(
            dataclasses.replace(base, ablation=dataclasses.replace(base.ablation, warmup_steps=12))
        )
    with pytest.raises(ConfigError, match=r"ablation.arms\[1\].name"):
        arms = [base.ablation.arms[0], AblationArm("Bad Name", "scored")]
        check_ablation(dataclasses.replace(base, ablation=dataclasses.replace(base.ablation, arms=arms)))
    # An arm over a table the pipeline has not written says which stages write it.
    with pytest.raises(FileNotFoundError, match=r"ablation.arms\[raw\].table"):
        run_ablation(spark, base, Tracker(base))
