"""Export -> train as the pipeline runs them: MLflow lineage, registration, baseline, idempotent re-runs."""

from __future__ import annotations

import dataclasses

import pytest
from tests.test_export import _export_cfg, _write_curated

from slm_curator.pipeline import run_pipeline
from slm_curator.train.job import checkpoint_dir

pytestmark = pytest.mark.spark


def _train_cfg(cfg, **train):
    t = dataclasses.replace(
        cfg.train,
        **{
            "model": {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_kv_head": 2},
            "micro_batch": 8,
            "max_steps": 80,
            "warmup_steps": 10,
            "eval_every": 40,
            "checkpoint_every": 40,
            "eval_batches": 4,
            "schedule": "wsd",
            "register_as": "test-gpt",
            **train,
        },
    )
    return dataclasses.replace(cfg, train=t)


def test_export_and_train_register_a_model_linked_to_its_shards(spark, cfg):
    import mlflow

    from slm_curator.train.registry import load_generator

    _write_curated(spark, cfg, n=480)
    cfg = _train_cfg(_export_cfg(cfg, anneal_fraction=0.2))
    export, train = run_pipeline(cfg, stages=["export", "train"], spark=spark)
    val = float(train.details["validation loss (nats/token)"])
    unigram = float(train.details["unigram baseline (nats/token)"])
    assert val < unigram - 0.3, (val, unigram)
    assert train.location == "models:/test-gpt/1"
    assert train.details["steps"] == "80/80"

    generator = load_generator(train.location)
    assert generator.meta["shards_fingerprint"] in export.notes[0]
    assert len(generator.complete(["the cat"], max_new_tokens=5, temperature=0.0)) == 1

    runs = mlflow.search_runs(
        experiment_names=[cfg.tracking.experiment], filter_string="tags.stage = 'train'", output_format="list"
    )
    (run,) = runs
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert "shards" in inputs
    assert run.data.tags["input.shards"].endswith(f"@v{export.version}")
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history][-1] == 80 and history[-1].value < history[0].value

    # Same shards and config: the finished checkpoint is found, nothing is trained or registered again.
    _, again = run_pipeline(cfg, stages=["export", "train"], spark=spark)
    assert again.location == "models:/test-gpt/1" and again.new_rows == 0
    assert any("nothing new" in n for n in again.notes)
    versions = mlflow.MlflowClient().search_model_versions("name = 'test-gpt'")
    assert len(versions) == 1


def test_checkpoint_folder_follows_what_changes_the_trajectory(cfg):
    manifest = {"fingerprint": "abc"}
    base = checkpoint_dir(cfg, manifest)
    assert base.name.startswith("abc-")
    assert checkpoint_dir(_train_cfg(cfg, log_every=3, max_seconds=9.0), manifest) == checkpoint_dir(
        _train_cfg(cfg), manifest
    )
    assert checkpoint_dir(_train_cfg(cfg, lr=1e-4), manifest) != checkpoint_dir(_train_cfg(cfg), manifest)
    assert checkpoint_dir(cfg, {"fingerprint": "other"}) != base


def test_train_without_an_export_says_what_to_run(cfg):
    from slm_curator.train.job import find_shards

    with pytest.raises(FileNotFoundError, match="run the export stage first"):
        find_shards(cfg)


def _shard_folder(tmp_path, val_rows: int = 8):
    """A hand-made export folder: shards, manifest and tokenizer, as the export stage lays them out."""
    import json
    import random

    import numpy as np
    from tests.test_export import _sentences

    from slm_curator.export.shard_format import write_shard
    from slm_curator.export.tokenizer import encode_with_eos, train_tokenizer

    rng = random.Random(3)
    texts = [_sentences(rng, 6) for _ in range(300)]
    tok = train_tokenizer(texts, 300, 2, "<|endoftext|>")
    folder = tmp_path / "shards" / "handmade"
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    ids = np.array([t for doc in encode_with_eos(tok, texts, eos) for t in doc])
    rows = ids[: len(ids) // 33 * 33].reshape(-1, 33)
    write_shard(folder / "train-00000.bin", rows[:-val_rows], tok.get_vocab_size(), eos)
    write_shard(folder / "val-00000.bin", rows[-val_rows:], tok.get_vocab_size(), eos)
    manifest = {
        "fingerprint": "handmade",
        "input_table": "none",
        "input_version": 0,
        "seq_len": 33,
        "vocab_size": tok.get_vocab_size(),
        "eos_id": eos,
        "tokenizer": "tokenizer.json",
        "splits": {"train": ["train-00000.bin"], "anneal": [], "val": ["val-00000.bin"]},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_torch_distributor_launch_trains_logs_and_registers(spark, cfg, tmp_path):
    """train.launcher=torch_distributor: pyspark starts 2 torchrun workers (gloo on CPU) on the driver."""
    import mlflow

    folder = _shard_folder(tmp_path)
    cfg = _train_cfg(
        cfg,
        shards=str(folder),
        launcher="torch_distributor",
        num_processes=2,
        micro_batch=8,
        max_steps=60,
        eval_every=30,
        checkpoint_every=30,
        register_as="td-gpt",
    )
    (summary,) = run_pipeline(cfg, stages=["train"], spark=spark)
    assert summary.location == "models:/td-gpt/1" and summary.details["steps"] == "60/60"
    (run,) = mlflow.search_runs(
        experiment_names=[cfg.tracking.experiment], filter_string="tags.stage = 'train'", output_format="list"
    )
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(1, 61))
    assert float(summary.details["validation loss (nats/token)"]) < float(
        summary.details["unigram baseline (nats/token)"]
    )
