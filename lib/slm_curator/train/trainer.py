"""The training loop: nanoGPT's shape (accumulate, clip, step), with exact resume and optional DDP.

No MLflow and no Spark here: the caller gets metrics through callbacks and the trained model in a
TrainResult, so the loop runs the same under pytest, torchrun and pyspark's TorchDistributor.

Exact resume rests on two things. The data a step reads is a pure function of the step
(see data.BatchPlan), and a checkpoint holds everything else that evolves: weights, AdamW moments,
every rank's RNG states and the loss history. On CPU a run killed and resumed reproduces an
uninterrupted run's losses bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import random
import sys
import time
import typing
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from slm_curator.config import TrainConfig
from slm_curator.export.shard_format import open_shard
from slm_curator.train.data import Batches, BatchPlan, ShardSet, val_batches
from slm_curator.train.model import GPT, ModelConfig, model_config

# Dense (no sparsity) bf16 tensor-core peaks by GPU name, for MFU; the first key found in the name
# wins. Other devices report MFU None unless the caller passes peak_flops_per_device.
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100": 989.5e12, "H200": 989.5e12, "A100": 312e12}

KEEP_CHECKPOINTS = 2

LogFn = Callable[[int, dict[str, Any]], None]


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    tokens_seen: int  # input tokens over all ranks and steps, resumed ones included
    train_losses: list[float]  # train_losses[k - 1] is step k's loss (mean over ranks and micro-batches)
    val_losses: dict[int, float]  # step -> val loss
    final_val_loss: float | None
    best_val_loss: float | None
    tokens_per_second: float  # this session's steps, all ranks, excluding eval and checkpoint time
    mfu: float | None
    data_wait_fraction: float  # of this session's step time, spent waiting for batches (rank 0)
    model_config: ModelConfig
    num_params: int
    resumed_from: int | None  # the checkpoint's step, or None for a fresh run
    stopped_early: bool  # max_seconds ran out before max_steps
    checkpoint_path: str | None
    train_seconds: float
    model: GPT | None = field(default=None, repr=False)  # unwrapped (no DDP, no compile), on its device

    @property
    def resumed(self) -> bool:
        return self.resumed_from is not None

    def summary(self) -> dict[str, Any]:
        """Everything but the model, as plain JSON-able values (what a distributed launch returns)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        out["model_config"] = dataclasses.asdict(self.model_config)
        out["val_losses"] = {str(k): v for k, v in self.val_losses.items()}
        return out


# ----------------------------------------------------------------------------------------------
# Schedule
# ----------------------------------------------------------------------------------------------


def decay_start(cfg: TrainConfig) -> int:
    """First step of the decay phase: the last decay_fraction of max_steps (rounded half up).

    WSD decays the learning rate there, and either schedule mixes in the anneal split from there on.
    """
    return cfg.max_steps - math.floor(cfg.decay_fraction * cfg.max_steps + 0.5)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of the update at 0-based `step`.

    Linear warmup over warmup_steps (step 0 already gets lr / warmup_steps, never 0), then either a
    cosine from lr to min_lr_ratio * lr at max_steps, or warmup-stable-decay: lr until decay_start,
    then linear to min_lr_ratio * lr at max_steps. Steps past max_steps stay at the minimum.
    """
    min_lr = cfg.lr * cfg.min_lr_ratio
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)
    if cfg.schedule == "wsd":
        start = max(decay_start(cfg), cfg.warmup_steps)
        if step < start:
            return cfg.lr
        progress = min(1.0, (step - start) / max(1, cfg.max_steps - start))
        return cfg.lr + (min_lr - cfg.lr) * progress
    raise ValueError(f"unknown schedule {cfg.schedule!r}; allowed: 'cosine', 'wsd'")


# ----------------------------------------------------------------------------------------------
# Unigram baseline
# ----------------------------------------------------------------------------------------------


def _target_counts(paths: Sequence[str | Path], vocab_size: int, chunk_rows: int) -> np.ndarray:
    counts = np.zeros(vocab_size, dtype=np.int64)
    for path in paths:
        header, rows = open_shard(path)
        if header.vocab_size > vocab_size:
            raise ValueError(f"{path}: vocab_size {header.vocab_size} exceeds the {vocab_size} given")
        for i in range(0, header.sequences, chunk_rows):
            counts += np.bincount(np.asarray(rows[i : i + chunk_rows, 1:]).ravel(), minlength=vocab_size)
    return counts


def unigram_cross_entropy(
    train_paths: Sequence[str | Path],
    eval_paths: Sequence[str | Path],
    vocab_size: int,
    chunk_rows: int = 8192,
) -> float:
    """Cross-entropy (nats/token) of the eval targets under add-one-smoothed train unigram frequencies.

    The loss of the best model that ignores context: a trained model that does not beat it clearly
    has learned nothing from the sequences. Both sides count targets (row[1:]), as the loss does, and
    shards are read in chunks of rows so memory stays flat on big exports.
    """
    train = _target_counts(train_paths, vocab_size, chunk_rows)
    held_out = _target_counts(eval_paths, vocab_size, chunk_rows)
    if not held_out.sum():
        raise ValueError("the eval shards hold no target tokens")
    log_p = np.log(train + 1.0) - np.log(train.sum() + vocab_size)
    return float(-(held_out * log_p).sum() / held_out.sum())


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


def checkpoint_path(checkpoint_dir: str | Path, step: int) -> Path:
    return Path(checkpoint_dir) / f"ckpt_{step:08d}.pt"


def checkpoint_step(path: str | Path) -> int:
    return int(Path(path).stem.removeprefix("ckpt_"))


def list_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (a file under the final name is complete: it is renamed there)."""
    folder = Path(checkpoint_dir)
    return sorted(folder.glob("ckpt_*.pt")) if folder.is_dir() else []


def save_checkpoint(
    state: dict[str, Any], checkpoint_dir: str | Path, keep: int = KEEP_CHECKPOINTS, keep_every: int = 0
) -> Path:
    """Write atomically (temp file, fsync, rename), then delete all but the newest `keep`.

    Checkpoints at multiples of `keep_every` survive: milestones that evaluation compares.
    """
    path = checkpoint_path(checkpoint_dir, state["step"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in list_checkpoints(checkpoint_dir)[:-keep]:
        if not (keep_every and checkpoint_step(old) % keep_every == 0):
            old.unlink(missing_ok=True)
    for stale in path.parent.glob(".ckpt_*.pt.tmp"):  # left by a writer killed mid-save
        stale.unlink(missing_ok=True)
    return path


def load_latest_checkpoint(checkpoint_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; an unreadable one (a torn disk, say) falls back to the one before."""
    for path in reversed(list_checkpoints(checkpoint_dir)):
        try:
            return path, torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to read means "try the previous one"
            warnings.warn(f"skipping unreadable checkpoint {path}: {exc}", stacklevel=2)
    return None


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, dict[str, Any]]:
    """A trained GPT (eval mode) from a checkpoint file or the newest in a folder, and the checkpoint."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        found = load_latest_checkpoint(checkpoint)
        if found is None:
            raise FileNotFoundError(f"no checkpoint in {checkpoint}")
        state = found[1]
    else:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = GPT(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()  # plain types: loads with weights_only
    state = {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Set-up
# ----------------------------------------------------------------------------------------------


def build_model_config(cfg: TrainConfig, vocab_size: int, seq_len: int) -> ModelConfig:
    """The preset with cfg.model's overrides, sized to the data unless overridden.

    vocab_size defaults to the shards' and block_size to their context (seq_len - 1). cfg.model is typed
    {str: float} (YAML and --set give numbers), so integral values of int fields become ints here.
    """
    hints = typing.get_type_hints(ModelConfig)
    overrides: dict[str, Any] = {}
    for key, value in cfg.model.items():
        if hints.get(key) is int:
            if not float(value).is_integer():
                raise ValueError(f"train.model.{key}: expected a whole number, got {value!r}")
            value = int(value)
        overrides[key] = value
    overrides.setdefault("vocab_size", vocab_size)
    overrides.setdefault("block_size", seq_len - 1)
    config = model_config(cfg.preset, **overrides)
    if config.vocab_size < vocab_size:
        raise ValueError(
            f"train.model.vocab_size {config.vocab_size} is smaller than the shards' {vocab_size}"
        )
    if config.block_size < seq_len - 1:
        raise ValueError(
            f"train.model.block_size {config.block_size} is below the shards' context {seq_len - 1}"
        )
    return config


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Peak FLOP/s of one device at the training dtype, or None where this table does not know it."""
    if device.type != "cuda" or dtype != torch.bfloat16:
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False  # this module initialised the process group, so it destroys it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _resolve_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    kind = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device("cuda", local_rank) if kind == "cuda" else torch.device("cpu")


def _init_distributed(cfg: TrainConfig) -> tuple[_Dist, torch.device]:
    """torchrun's (or TorchDistributor's) RANK/WORLD_SIZE/LOCAL_RANK -> a process group; else one process."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", 0))
        return _Dist(dist.get_rank(), dist.get_world_size(), local), _resolve_device(cfg, local)
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return _Dist(), _resolve_device(cfg, 0)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    device = _resolve_device(cfg, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank, world, local, owned=True), device


def _autocast(cfg: TrainConfig, device: torch.device) -> tuple[Any, torch.dtype]:
    """bf16 autocast on CUDA unless float32 is asked for; float32 on CPU unless bfloat16 is."""
    name = cfg.dtype if cfg.dtype != "auto" else ("bfloat16" if device.type == "cuda" else "float32")
    if name == "float32":
        return nullcontext(), torch.float32
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16), torch.bfloat16


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    autocast: Any = None,
    ddp: _Dist | None = None,
) -> float:
    """Mean loss per target token over `batches` (this rank's share; summed over ranks under DDP)."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, token count
    for x, y in batches:
        with autocast or nullcontext():
            _, loss = model(x.to(device), y.to(device))
        totals[0] += loss.double() * y.numel()
        totals[1] += y.numel()
    if ddp is not None and ddp.enabled:
        dist.all_reduce(totals)
    model.train(was_training)
    return (totals[0] / totals[1]).item()


def train(
    cfg: TrainConfig,
    splits: dict[str, list[str]],
    checkpoint_dir: str | Path,
    on_log: LogFn | None = None,
    on_eval: LogFn | None = None,
    on_checkpoint: Callable[[int, str], None] | None = None,
    peak_flops_per_device: float | None = None,
    prefetch: int = 4,
) -> TrainResult:
    """Train a GPT on shard files and return the model with its metrics.

    splits: "train" (required), "anneal" and "val" (optional) lists of shard paths. Callbacks run on
    rank 0 only: on_log(step, {loss, lr, grad_norm, tokens_per_second, mfu, data_wait_fraction,
    tokens_seen}) every log_every steps and at the end, on_eval(step, {val_loss}) after each
    evaluation, on_checkpoint(step, path) after each checkpoint. `step` counts completed updates.
    peak_flops_per_device overrides the PEAK_BF16_FLOPS lookup for MFU.
    """
    if not splits.get("train"):
        raise ValueError("splits['train'] must list at least one shard")
    ddp, device = _init_distributed(cfg)
    callbacks = _Callbacks(on_log, on_eval, on_checkpoint)
    try:
        session = _Session(cfg, splits, Path(checkpoint_dir), ddp, device, peak_flops_per_device)
        with Batches(
            session.train_set,
            session.plan,
            cfg.seed,
            session.anneal_set,
            session.step,
            cfg.max_steps,
            prefetch,
            device,
        ) as batches:
            session.loop(batches, callbacks)
        if ddp.owned:
            # Every rank finished before any tears the group down: a rank still inside gloo when the
            # store goes away aborts ("terminate called without an active exception").
            dist.barrier()
        result = session.result()
        del session  # only the result is left; its DDP wrapper goes with the collection below
        return result
    finally:
        if ddp.owned:
            # The DDP wrapper sits in a reference cycle, and its reducer holds the process group: left to
            # the interpreter's exit, gloo is torn down after the other rank has gone and aborts the
            # same way (~1 run in 16). Collect it first.
            gc.collect()
            dist.destroy_process_group()


def _open_splits(splits: dict[str, list[str]]) -> tuple[ShardSet, ShardSet | None, ShardSet | None]:
    train_set = ShardSet(splits["train"])
    anneal_set = ShardSet(splits["anneal"]) if splits.get("anneal") else None
    val_set = ShardSet(splits["val"]) if splits.get("val") else None
    for name, other in (("anneal", anneal_set), ("val", val_set)):
        if other is not None:
            train_set.check_compatible(other, name)
    return train_set, anneal_set, val_set


def _find_checkpoint(checkpoint_dir: Path, ddp: _Dist) -> tuple[Path, dict[str, Any]] | None:
    """Rank 0 picks the newest readable checkpoint and every rank loads that same file."""
    found = load_latest_checkpoint(checkpoint_dir) if ddp.main else None
    if ddp.enabled:
        box = [str(found[0]) if found else None]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None and not ddp.main:
            found = (Path(box[0]), torch.load(box[0], map_location="cpu", weights_only=True))
    return found


def _check_resumable(path: Path, state: dict[str, Any], mconf: ModelConfig, plan: BatchPlan) -> None:
    """Refuse a checkpoint this run cannot continue exactly: another model, or another data order."""
    if state["model_config"] != dataclasses.asdict(mconf):
        raise ValueError(
            f"{path} holds a model {state['model_config']}, this run builds {dataclasses.asdict(mconf)}; "
            "resume with the same train.preset and train.model, or start a new checkpoint folder"
        )
    train_rows, anneal_rows = plan.consumed(state["step"])
    expected = {"train_rows": train_rows, "anneal_rows": anneal_rows}
    if state["data"] != expected:
        raise ValueError(
            f"{path} read {state['data']} rows by step {state['step']} but this run's batch layout would "
            f"have read {expected}; resume with the same micro_batch * world size, grad_accum, max_steps, "
            "decay_fraction and anneal_mix"
        )


def _every(step: int, interval: int) -> bool:
    return interval > 0 and step % interval == 0


@dataclass(frozen=True)
class _Callbacks:
    on_log: LogFn | None = None
    on_eval: LogFn | None = None
    on_checkpoint: Callable[[int, str], None] | None = None


class _Session:
    """One training session: model, optimizer, data plan and history; its methods are the loop's steps."""

    def __init__(self, cfg, splits, checkpoint_dir: Path, ddp: _Dist, device, peak_flops_per_device=None):
        self.started = time.time()
        self.cfg, self.ddp, self.device, self.checkpoint_dir = cfg, ddp, device, checkpoint_dir
        self.train_set, self.anneal_set, val_set = _open_splits(splits)
        # Per-rank seeds decorrelate dropout; initial weights need not agree, DDP broadcasts rank 0's.
        _seed_everything(cfg.seed + ddp.rank)
        self.mconf = build_model_config(cfg, self.train_set.vocab_size, self.train_set.seq_len)
        self.raw_model = GPT(self.mconf).to(device)
        self.optimizer = self.raw_model.optimizer(
            cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), device.type
        )
        self.plan = BatchPlan(
            micro_batch=cfg.micro_batch,
            grad_accum=cfg.grad_accum,
            world_size=ddp.world_size,
            rank=ddp.rank,
            decay_start=decay_start(cfg) if self.anneal_set is not None else None,
            anneal_mix=cfg.anneal_mix,
        )
        self.step, self.resumed_from = 0, None
        self.train_losses: list[float] = []
        self.val_losses: dict[int, float] = {}
        if cfg.resume:
            self._resume()
        self.start_step = self.step
        self.autocast, amp_dtype = _autocast(cfg, device)
        self._wrap()
        # Every rank holds eval_batches * W batches of micro_batch rows and evaluates its 1/W share, so
        # the val rows are those of one process with micro_batch * W.
        all_val = val_batches(val_set, cfg.micro_batch, cfg.eval_batches * ddp.world_size) if val_set else []
        self.val, self.has_val = (
            all_val[ddp.rank :: ddp.world_size],
            bool(all_val),
        )  # has_val agrees across ranks
        context = self.train_set.seq_len - 1
        self.tokens_per_step = cfg.micro_batch * cfg.grad_accum * ddp.world_size * context
        self.flops_per_token = self.raw_model.flops_per_token(context)
        self.peak = peak_flops_per_device or peak_flops(device, amp_dtype)
        self.params = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")  # inf: measure the norm, never scale
        self.train_seconds = self.wait_seconds = 0.0
        self.stopped_early, self.last_checkpoint = False, None

    def _resume(self) -> None:
        """Continue from the newest checkpoint: weights, optimizer, losses and every rank's RNG."""
        found = _find_checkpoint(self.checkpoint_dir, self.ddp)
        if found is None:
            return
        path, state = found
        _check_resumable(path, state, self.mconf, self.plan)
        self.step = self.resumed_from = state["step"]
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.train_losses = list(state["history"]["train_losses"])
        self.val_losses = dict(state["history"]["val_losses"])
        if len(state["rng"]) == self.ddp.world_size:
            _set_rng_state(state["rng"][self.ddp.rank], self.device)
        else:  # another world size: fresh per-rank streams, still a function of the step
            _seed_everything(self.cfg.seed + self.ddp.rank + 1_000_003 * self.step)

    def _wrap(self) -> None:
        """The model the loop calls: compiled when asked, inside DDP under torchrun."""
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.eval_model = torch.compile(self.raw_model) if self.cfg.compile else self.raw_model
        self.model = self.eval_model
        if self.ddp.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DDP(self.eval_model, device_ids=ids)

    def mfu(self, tokens_per_second: float) -> float | None:
        return (
            tokens_per_second * self.flops_per_token / (self.peak * self.ddp.world_size)
            if self.peak
            else None
        )

    def time_up(self) -> bool:
        """Rank 0's clock decides, so every rank leaves the loop at the same step."""
        if not self.cfg.max_seconds:
            return False
        up = time.time() - self.started >= self.cfg.max_seconds
        if self.ddp.enabled:
            flag = torch.tensor([float(up)], device=self.device)
            dist.broadcast(flag, src=0)
            up = bool(flag.item())
        return up

    def update(self, batches: Batches) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One optimizer step over grad_accum micro-batches: (summed loss, grad norm, lr), left on the device."""
        cfg, model = self.cfg, self.model
        lr = lr_at(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=self.device)
        for micro in range(cfg.grad_accum):
            x, y = batches.get(self.step, micro)
            # Gradients are all-reduced once per step, on its last micro-step.
            sync = model.no_sync() if self.ddp.enabled and micro < cfg.grad_accum - 1 else nullcontext()
            with sync:
                with self.autocast:
                    _, loss = model(x, y)
                loss = loss / cfg.grad_accum
                loss.backward()
            step_loss += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1  # from here on, `step` counts completed updates
        return step_loss, grad_norm, lr

    def evaluate(self, callbacks: _Callbacks) -> None:
        self.val_losses[self.step] = evaluate(self.eval_model, self.val, self.device, self.autocast, self.ddp)
        if self.ddp.main and callbacks.on_eval:
            callbacks.on_eval(self.step, {"val_loss": self.val_losses[self.step]})

    def checkpoint(self, callbacks: _Callbacks) -> None:
        rng = [None] * self.ddp.world_size
        if self.ddp.enabled:
            dist.all_gather_object(rng, _rng_state(self.device))
        else:
            rng[0] = _rng_state(self.device)
        if not self.ddp.main:
            return
        train_rows, anneal_rows = self.plan.consumed(self.step)
        state = {
            "step": self.step,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "model_config": dataclasses.asdict(self.mconf),
            "train_config": dataclasses.asdict(self.cfg),
            "data": {"train_rows": train_rows, "anneal_rows": anneal_rows},
            "rng": rng,
            "history": {"train_losses": self.train_losses, "val_losses": self.val_losses},
        }
        self.last_checkpoint = str(
            save_checkpoint(state, self.checkpoint_dir, keep_every=self.cfg.keep_every)
        )
        if callbacks.on_checkpoint:
            callbacks.on_checkpoint(self.step, self.last_checkpoint)

    def loop(self, batches: Batches, callbacks: _Callbacks) -> None:
        """Steps until max_steps (or max_seconds); logs, evaluates and checkpoints at their intervals.

        Losses stay on the device until a log, eval or checkpoint, so the loop never waits on the GPU
        in between; timings are taken at those same sync points and exclude eval and checkpoint time.
        """
        cfg = self.cfg
        pending: list[torch.Tensor] = []
        mark, mark_step, mark_wait = time.perf_counter(), self.step, 0.0
        self.model.train()
        while self.step < cfg.max_steps:
            step_loss, grad_norm, lr = self.update(batches)
            pending.append(step_loss)
            self.stopped_early = self.step < cfg.max_steps and self.time_up()
            final = self.step == cfg.max_steps or self.stopped_early
            do_log = _every(self.step, cfg.log_every) or final
            do_eval = self.has_val and (_every(self.step, cfg.eval_every) or final)
            do_ckpt = _every(self.step, cfg.checkpoint_every) or final
            if not (do_log or do_eval or do_ckpt):
                continue
            seconds, waited = self._sync(pending, mark, batches.wait_seconds - mark_wait)
            if do_log and self.ddp.main and callbacks.on_log:
                tokens_per_second = (self.step - mark_step) * self.tokens_per_step / seconds
                metrics = {
                    "loss": self.train_losses[-1],
                    "lr": lr,
                    "grad_norm": grad_norm.item(),
                    "tokens_per_second": tokens_per_second,
                    "mfu": self.mfu(tokens_per_second),
                    "data_wait_fraction": waited / seconds,
                    "tokens_seen": self.step * self.tokens_per_step,
                }
                callbacks.on_log(self.step, metrics)
            if do_eval:
                self.evaluate(callbacks)
            if do_ckpt:
                self.checkpoint(callbacks)
            mark, mark_step, mark_wait = time.perf_counter(), self.step, batches.wait_seconds
            if self.stopped_early:
                break
        if self.has_val and self.step not in self.val_losses:  # a finished run resumed: score it again
            self.evaluate(callbacks)

    def _sync(self, pending: list[torch.Tensor], mark: float, waited: float) -> tuple[float, float]:
        """Bring the pending losses to the host (all ranks averaged); (seconds, data wait) since `mark`."""
        losses = torch.stack(pending).float()
        if self.ddp.enabled:
            dist.all_reduce(losses)  # SUM: gloo has no AVG
            losses /= self.ddp.world_size
        self.train_losses.extend(losses.tolist())  # waits for the device, so the timings below are real
        pending.clear()
        seconds = time.perf_counter() - mark
        self.train_seconds += seconds
        self.wait_seconds += waited
        return seconds, waited

    def result(self) -> TrainResult:
        seconds = self.train_seconds
        tokens_per_second = (self.step - self.start_step) * self.tokens_per_step / seconds if seconds else 0.0
        return TrainResult(
            step=self.step,
            tokens_seen=self.step * self.tokens_per_step,
            train_losses=self.train_losses,
            val_losses=self.val_losses,
            final_val_loss=self.val_losses.get(self.step),
            best_val_loss=min(self.val_losses.values()) if self.val_losses else None,
            tokens_per_second=tokens_per_second,
            mfu=self.mfu(tokens_per_second),
            data_wait_fraction=self.wait_seconds / seconds if seconds else 0.0,
            model_config=self.mconf,
            num_params=self.raw_model.num_params(),
            resumed_from=self.resumed_from,
            stopped_early=self.stopped_early,
            checkpoint_path=self.last_checkpoint,
            train_seconds=seconds,
            model=self.raw_model,
        )


# ----------------------------------------------------------------------------------------------
# Launch entry points
# ----------------------------------------------------------------------------------------------


def train_from_dict(
    cfg_dict: dict[str, Any], splits: dict[str, list[str]], checkpoint_dir: str
) -> dict[str, Any] | None:
    """Picklable-argument entry for a distributed launch (TorchDistributor.run(train_from_dict, ...)).

    Returns rank 0's TrainResult.summary() on every rank; the weights are in the last checkpoint,
    which `load_model(checkpoint_dir)` reads back. Every rank returns it because TorchDistributor's
    wrapper has each process write its return value to the same output file: the last writer wins, and
    a None from rank 1 once replaced rank 0's summary. Rank 0 leaves it in a file named by the launch
    (torchrun's run id) for the others to return.
    """
    result = train(TrainConfig(**cfg_dict), splits, checkpoint_dir)
    rank, run_id = int(os.environ.get("RANK", 0)), os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:  # not under torchrun: a single process
        return result.summary() if rank == 0 else None
    shared = Path(checkpoint_dir) / f"summary-{run_id}.json"
    if rank == 0:
        summary = result.summary()
        tmp = shared.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(summary))
        os.replace(tmp, shared)
        return summary
    deadline = time.monotonic() + 600
    while not shared.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {rank}: rank 0 wrote no summary at {shared}")
        time.sleep(0.2)
    return json.loads(shared.read_text())


def main(argv: list[str] | None = None) -> None:
    """`[torchrun ...] python -m slm_curator.train.trainer --config cfg.json --train a.bin ...`.

    Prints one JSON object per log, eval and the final result on stdout (rank 0).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="JSON file of TrainConfig fields (defaults for the rest)")
    parser.add_argument("--train", nargs="+", required=True, help="train shard files")
    parser.add_argument("--anneal", nargs="*", default=[], help="anneal shard files")
    parser.add_argument("--val", nargs="*", default=[], help="validation shard files")
    parser.add_argument("--checkpoint-dir", required=True)
    args = parser.parse_args(argv)
    cfg = TrainConfig(**(json.loads(Path(args.config).read_text()) if args.config else {}))

    def emit(event: str) -> LogFn:
        return lambda step, metrics: print(json.dumps({"event": event, "step": step, **metrics}), flush=True)

    splits = {"train": args.train, "anneal": args.anneal, "val": args.val}
    result = train(cfg, splits, args.checkpoint_dir, on_log=emit("log"), on_eval=emit("eval"))
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"event": "result", **result.summary()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
