"""The training loop: schedules, the unigram baseline, learning, checkpoints, kill/resume and DDP.

The data is a synthetic language a one-layer model learns in a hundred steps: each token is followed
by a fixed successor 80% of the time and by a uniform token otherwise, and one row in ten is pure noise.
Its unigram distribution is uniform, so the unigram baseline is ~ln(V) while the model can reach ~1.5.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from slm_curator.config import TrainConfig
from slm_curator.export.shard_format import write_shard
from slm_curator.train.trainer import (
    build_model_config,
    decay_start,
    list_checkpoints,
    load_latest_checkpoint,
    load_model,
    lr_at,
    save_checkpoint,
    train,
    unigram_cross_entropy,
)

V, SEQ_LEN = 64, 33
TINY = {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "n_embd": 32, "ffn_hidden": 64}
HERE = Path(__file__).resolve().parent


def _markov_rows(n: int, seed: int, noise_rows: float = 0.1) -> np.ndarray:
    successor = np.random.default_rng(0).permutation(V)
    rng = np.random.default_rng(seed)
    rows = np.empty((n, SEQ_LEN), dtype=np.int64)
    rows[:, 0] = rng.integers(0, V, n)
    for t in range(1, SEQ_LEN):
        follow = rng.random(n) < 0.8
        rows[:, t] = np.where(follow, successor[rows[:, t - 1]], rng.integers(0, V, n))
    noisy = rng.random(n) < noise_rows
    rows[noisy] = rng.integers(0, V, (int(noisy.sum()), SEQ_LEN))
    return rows


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, list[str]]:
    folder = tmp_path_factory.mktemp("shards")
    out: dict[str, list[str]] = {"train": [], "anneal": [], "val": []}
    for name, shard, rows, seed, noise in [
        ("train", 0, 400, 1, 0.1),
        ("train", 1, 300, 2, 0.1),
        ("anneal", 0, 100, 3, 0.0),  # the "high-quality" slice: no noise rows
        ("val", 0, 100, 4, 0.1),
    ]:
        path = folder / f"{name}_{shard}.bin"
        write_shard(path, _markov_rows(rows, seed, noise), V, eos_id=0)
        out[name].append(str(path))
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread, as the subprocesses get: two cores shared with other work spin otherwise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(**overrides) -> TrainConfig:
    base = dict(
        model=TINY,
        micro_batch=8,
        max_steps=40,
        lr=1e-2,
        warmup_steps=5,
        eval_every=10,
        eval_batches=2,
        checkpoint_every=10,
        log_every=1,
        device="cpu",
        seed=5,
    )
    return TrainConfig(**{**base, **overrides})


# ----------------------------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------------------------


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(lr=1.0, min_lr_ratio=0.1, warmup_steps=10, max_steps=110, schedule="cosine")
    assert [lr_at(s, cfg) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)  # halfway: the mean of lr and the floor
    assert lr_at(110, cfg) == pytest.approx(0.1) and lr_at(500, cfg) == pytest.approx(0.1)
    decay = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))


def test_wsd_schedule_is_flat_then_decays_linearly_over_the_last_fraction():
    cfg = TrainConfig(
        lr=2.0, min_lr_ratio=0.1, warmup_steps=5, max_steps=100, schedule="wsd", decay_fraction=0.2
    )
    assert decay_start(cfg) == 80
    assert lr_at(0, cfg) == pytest.approx(0.4)
    assert {lr_at(s, cfg) for s in range(5, 81)} == {2.0}
    assert lr_at(90, cfg) == pytest.approx(1.1)  # halfway down from 2.0 to 0.2
    assert lr_at(100, cfg) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(50, dataclasses.replace(cfg, schedule="linear"))


def test_unigram_cross_entropy_matches_a_direct_computation(tmp_path):
    rng = np.random.default_rng(0)
    train_rows = rng.integers(0, 8, (50, 5)) % 5  # tokens 0..4 only; 5..7 get add-one mass
    val_rows = rng.integers(0, 8, (20, 5))
    write_shard(tmp_path / "t.bin", train_rows, 8, eos_id=0)
    write_shard(tmp_path / "v.bin", val_rows, 8, eos_id=0)
    counts = np.bincount(train_rows[:, 1:].ravel(), minlength=8) + 1.0
    p = counts / counts.sum()
    expected = -np.log(p[val_rows[:, 1:].ravel()]).mean()
    got = unigram_cross_entropy([tmp_path / "t.bin"], [tmp_path / "v.bin"], 8, chunk_rows=7)
    assert got == pytest.approx(expected, rel=1e-12)


def test_model_config_sizes_to_the_data_and_takes_numeric_overrides():
    cfg = _cfg(model={"n_layer": 2.0, "n_embd": 48.0, "n_head": 4, "n_kv_head": 2, "dropout": 0.1})
    mc = build_model_config(cfg, vocab_size=V, seq_len=SEQ_LEN)
    assert (mc.vocab_size, mc.block_size, mc.n_layer, mc.n_embd, mc.dropout) == (V, SEQ_LEN - 1, 2, 48, 0.1)
    assert isinstance(mc.n_layer, int)
    with pytest.raises(ValueError, match="whole number"):
        build_model_config(_cfg(model={"n_layer": 2.5}), V, SEQ_LEN)
    with pytest.raises(ValueError, match="block_size 16 is below"):
        build_model_config(_cfg(model={"block_size": 16}), V, SEQ_LEN)


def test_checkpoints_are_pruned_and_an_unreadable_newest_is_skipped(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint({"step": step, "x": torch.tensor([step])}, tmp_path)
    (tmp_path / ".ckpt_00000004.pt.tmp").write_bytes(b"torn")  # a writer killed mid-save
    save_checkpoint({"step": 5, "x": torch.tensor([5])}, tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000003.pt", "ckpt_00000005.pt"]
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "ckpt_00000009.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="ckpt_00000009"):
        path, state = load_latest_checkpoint(tmp_path)
    assert path.name == "ckpt_00000005.pt" and state["step"] == 5


# ----------------------------------------------------------------------------------------------
# In-process training
# ----------------------------------------------------------------------------------------------


def test_training_learns_the_language_and_beats_the_unigram_baseline(tmp_path, splits):
    logs, evals, saved = [], [], []
    cfg = _cfg(
        max_steps=150, micro_batch=16, eval_every=50, eval_batches=4, checkpoint_every=50, log_every=25
    )
    result = train(
        cfg,
        splits,
        tmp_path / "ckpt",
        on_log=lambda s, m: logs.append((s, m)),
        on_eval=lambda s, m: evals.append((s, m["val_loss"])),
        on_checkpoint=lambda s, p: saved.append(s),
    )
    unigram = unigram_cross_entropy(splits["train"], splits["val"], V)
    assert unigram > 0.98 * math.log(V)
    assert result.final_val_loss < 0.6 * unigram, (result.final_val_loss, unigram)
    assert np.mean(result.train_losses[-20:]) < 0.6 * math.log(V)
    assert result.train_losses[0] == pytest.approx(math.log(V), abs=0.15)

    assert (result.step, len(result.train_losses), result.tokens_seen) == (150, 150, 150 * 16 * (SEQ_LEN - 1))
    assert [s for s, _ in logs] == [25, 50, 75, 100, 125, 150]
    assert logs[-1][1]["loss"] == result.train_losses[-1] and logs[-1][1]["mfu"] is None
    assert set(logs[0][1]) == {
        "loss",
        "lr",
        "grad_norm",
        "tokens_per_second",
        "mfu",
        "data_wait_fraction",
        "tokens_seen",
    }
    assert [s for s, _ in evals] == [50, 100, 150] and result.val_losses == dict(evals)
    assert result.best_val_loss == min(result.val_losses.values())
    assert (
        saved == [50, 100, 150]
        and [p.name for p in list_checkpoints(tmp_path / "ckpt")][-1] == "ckpt_00000150.pt"
    )
    assert len(list_checkpoints(tmp_path / "ckpt")) == 2
    assert result.mfu is None and 0.0 <= result.data_wait_fraction < 1.0 and result.tokens_per_second > 0
    assert result.num_params == result.model.num_params() and not result.resumed
    json.dumps(result.summary())

    # The saved model is the returned one.
    model, state = load_model(tmp_path / "ckpt")
    assert state["step"] == 150
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name

    # Resuming a finished run trains nothing and reports the same history.
    again = train(cfg, splits, tmp_path / "ckpt")
    assert (again.resumed_from, again.step, again.train_losses) == (150, 150, result.train_losses)
    assert again.final_val_loss == result.final_val_loss
    # A different batch layout cannot continue the same data order.
    with pytest.raises(ValueError, match="batch layout"):
        train(dataclasses.replace(cfg, micro_batch=8, max_steps=200), splits, tmp_path / "ckpt")


def test_max_seconds_stops_early_with_a_checkpoint_and_a_val_loss(tmp_path, splits):
    cfg = _cfg(max_steps=10_000, max_seconds=1.0, eval_every=1000, checkpoint_every=1000)
    result = train(cfg, splits, tmp_path / "ckpt", on_log=lambda s, m: time.sleep(0.02))
    assert result.stopped_early and 0 < result.step < 10_000
    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == [f"ckpt_{result.step:08d}.pt"]
    assert list(result.val_losses) == [result.step] and len(result.train_losses) == result.step


# ----------------------------------------------------------------------------------------------
# Subprocesses: kill and resume, DDP
# ----------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _read_log(path: Path) -> list[dict]:
    """Complete JSON lines only: a process killed mid-write may leave a partial last line."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def _script(config: Path, splits: Path, ckpt: Path, log: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(HERE / "train_script.py"),
        str(config),
        str(splits),
        str(ckpt),
        str(log),
        *extra,
    ]


def _result(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_a_killed_run_resumes_with_bit_identical_losses(tmp_path, splits):
    """SIGKILL after a checkpoint and a few more steps, resume: every loss equals the uninterrupted run's.

    Tolerance: none. On CPU the resumed run is bit-identical (losses, val losses and final weights).
    """
    config = _write_json(
        tmp_path / "cfg.json", dataclasses.asdict(_cfg(max_steps=40, micro_batch=4, grad_accum=2))
    )
    split_file = _write_json(tmp_path / "splits.json", splits)

    ref_log = tmp_path / "ref.jsonl"
    ref = subprocess.run(
        _script(config, split_file, tmp_path / "ref", ref_log),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ref.returncode == 0, ref.stderr
    reference = _result(ref.stdout)
    ref_losses = {r["step"]: r["loss"] for r in _read_log(ref_log)}
    assert sorted(ref_losses) == list(range(1, 41))

    ckpt, log = tmp_path / "killed", tmp_path / "killed.jsonl"
    stderr = tmp_path / "killed.stderr"
    with stderr.open("w") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            _script(config, split_file, ckpt, log, "--step-sleep", "0.05"),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 120
    while True:
        saved, logged = list_checkpoints(ckpt), _read_log(log)
        if saved and logged and logged[-1]["step"] >= int(saved[-1].stem.split("_")[1]) + 3:
            break
        assert proc.poll() is None, f"the run ended before it could be killed: {stderr.read_text()}"
        assert time.monotonic() < deadline, "no checkpoint within two minutes"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt_step = int(list_checkpoints(ckpt)[-1].stem.split("_")[1])
    killed_at = _read_log(log)[-1]["step"]
    assert ckpt_step < killed_at < 40  # some steps after the checkpoint are lost and recomputed

    resumed = subprocess.run(
        _script(config, split_file, ckpt, log), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    result = _result(resumed.stdout)
    assert result["resumed_from"] == ckpt_step

    # Every logged loss, before the kill and after the resume (the recomputed steps twice), is exact.
    records = _read_log(log)
    assert {r["step"] for r in records} == set(range(1, 41))
    assert [r["loss"] for r in records] == [ref_losses[r["step"]] for r in records]
    assert result["train_losses"] == reference["train_losses"]
    assert result["val_losses"] == reference["val_losses"]
    final = torch.load(ckpt / "ckpt_00000040.pt")["model"]
    for name, tensor in torch.load(tmp_path / "ref" / "ckpt_00000040.pt")["model"].items():
        assert torch.equal(final[name], tensor), name


def _run_trainer(tmp_path: Path, name: str, cfg: TrainConfig, splits: dict, nproc: int) -> dict:
    config = _write_json(tmp_path / f"{name}.json", dataclasses.asdict(cfg))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    args = ["--config", str(config), "--checkpoint-dir", str(tmp_path / name)]
    for split, paths in splits.items():
        args += [f"--{split}", *paths]
    cmd = (launcher if nproc > 1 else [sys.executable]) + ["-m", "slm_curator.train.trainer", *args]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return next(e for e in events if e["event"] == "result")


def test_ddp_two_ranks_match_one_process_with_twice_the_micro_batch(tmp_path, splits):
    """torchrun --nproc_per_node 2 on gloo with micro_batch 4 == one process with micro_batch 8.

    Same rows, same updates; only float summation order differs (each rank averages its 4 rows, DDP
    averages the two gradients), so losses agree to rtol 1e-5 (observed: ~1e-7).
    """
    common = dict(
        max_steps=12,
        grad_accum=2,
        schedule="wsd",
        decay_fraction=0.25,  # steps 9..11 mix in the anneal split: 2 of 4 rows per rank, 4 of 8 alone
        anneal_mix=0.5,
        eval_every=6,
        checkpoint_every=6,
        log_every=4,
    )
    single = _run_trainer(tmp_path, "single", _cfg(micro_batch=8, **common), splits, nproc=1)
    ddp = _run_trainer(tmp_path, "ddp", _cfg(micro_batch=4, **common), splits, nproc=2)
    assert len(ddp["train_losses"]) == 12 and ddp["tokens_seen"] == single["tokens_seen"]
    np.testing.assert_allclose(ddp["train_losses"], single["train_losses"], rtol=1e-5, atol=0)
    assert ddp["val_losses"].keys() == single["val_losses"].keys() == {"6", "12"}
    np.testing.assert_allclose(
        list(ddp["val_losses"].values()), list(single["val_losses"].values()), rtol=1e-5
    )
    assert ddp["train_losses"][-1] < ddp["train_losses"][0]


def test_checkpoint_retention_keeps_the_newest_two_and_milestones(tmp_path):
    from slm_curator.train.trainer import checkpoint_step, list_checkpoints, save_checkpoint

    for step in range(10, 80, 10):
        save_checkpoint({"step": step}, tmp_path, keep_every=30)
    assert [checkpoint_step(p) for p in list_checkpoints(tmp_path)] == [30, 60, 70]
