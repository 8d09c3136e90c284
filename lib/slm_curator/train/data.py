"""Batches from token shards: memory-mapped rows, a seeded order, and a plan that derives from the step.

Every batch is a pure function of (seed, optimizer step, micro-step, rank): each split is a *stream*
that walks a fresh seeded permutation of all its rows every epoch, and the batch plan says at which
stream position each micro-batch starts. So resuming needs no data-loader state beyond the step,
and W processes with micro-batch B read exactly the rows one process with micro-batch W*B reads.
A background thread gathers batches a few micro-steps ahead and counts how long the loop waited.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slm_curator.export.shard_format import ShardHeader, open_shard

# Validation rows are chosen with this seed, not the run's, so runs with different seeds are scored
# on the same rows and their val losses compare.
VAL_SEED = 0


class ShardSet:
    """Shards with one seq_len and vocabulary, viewed as a single indexable collection of rows."""

    def __init__(self, paths: Sequence[str | Path]):
        if not paths:
            raise ValueError("ShardSet needs at least one shard path")
        self.paths = [Path(p) for p in paths]
        opened = [open_shard(p) for p in self.paths]
        self.headers: list[ShardHeader] = [h for h, _ in opened]
        self._rows = [rows for _, rows in opened]
        first = self.headers[0]
        for path, h in zip(self.paths, self.headers, strict=True):
            if (h.seq_len, h.vocab_size) != (first.seq_len, first.vocab_size):
                raise ValueError(
                    f"shard {path} has seq_len={h.seq_len}, vocab_size={h.vocab_size} but {self.paths[0]} "
                    f"has seq_len={first.seq_len}, vocab_size={first.vocab_size}; shards read together "
                    "must come from one export (one tokenizer, one sequence length)"
                )
        self.seq_len, self.vocab_size, self.eos_id = first.seq_len, first.vocab_size, first.eos_id
        # offsets[i] is the global id of shard i's first row; offsets[-1] the total.
        self.offsets = np.concatenate([[0], np.cumsum([h.sequences for h in self.headers])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def tokens(self) -> int:
        return len(self) * self.seq_len

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), seq_len) int64 rows in the order of `ids`; only the pages holding them are read."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"row ids must lie in [0, {len(self)}); got {ids.min()}..{ids.max()}")
        out = np.empty((ids.size, self.seq_len), dtype=np.int64)
        shard = np.searchsorted(self.offsets, ids, side="right") - 1
        for s in np.unique(shard):
            where = np.flatnonzero(shard == s)
            out[where] = self._rows[s][ids[where] - self.offsets[s]]
        return out

    def check_compatible(self, other: ShardSet, name: str) -> None:
        if (other.seq_len, other.vocab_size) != (self.seq_len, self.vocab_size):
            raise ValueError(
                f"{name} shards have seq_len={other.seq_len}, vocab_size={other.vocab_size} but the train "
                f"shards have seq_len={self.seq_len}, vocab_size={self.vocab_size}"
            )


def epoch_permutation(num_rows: int, seed: int, epoch: int) -> np.ndarray:
    """The row order of one epoch: a permutation seeded by (seed, epoch) alone, so any host derives it."""
    return np.random.Generator(np.random.PCG64([seed, epoch])).permutation(num_rows)


class RowStream:
    """An endless sequence of row ids, one seeded permutation per epoch; position p is row p of it.

    Stateless: `ids(position, count)` depends only on its arguments, so the stream's whole state in a
    checkpoint is one integer. The last two epochs' permutations are cached (a batch spans at most two).
    """

    def __init__(self, num_rows: int, seed: int):
        if num_rows < 1:
            raise ValueError("a stream needs at least one row")
        self.num_rows, self.seed = num_rows, seed
        self._cache: dict[int, np.ndarray] = {}

    def _epoch(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[epoch] = epoch_permutation(self.num_rows, self.seed, epoch)
        return self._cache[epoch]

    def ids(self, position: int, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            epoch, offset = divmod(position + done, self.num_rows)
            take = min(count - done, self.num_rows - offset)
            out[done : done + take] = self._epoch(epoch)[offset : offset + take]
            done += take
        return out


@dataclass(frozen=True)
class BatchPlan:
    """Which stream rows each (step, micro-step, rank) reads.

    Micro-batches are numbered globally, g = (step * grad_accum + micro) * world_size + rank, and the
    first g micro-batches consume

        train(g)  = min(g, g0) * B + max(g - g0, 0) * (B - a)
        anneal(g) = max(g - g0, 0) * a

    rows, where g0 = decay_start * grad_accum * world_size is the first micro-batch of the decay phase
    and a = round_half_up(B * anneal_mix) its anneal rows (0 without an anneal split). Micro-batch g
    reads the rows at those positions onwards. Before the decay phase this is the plain
    (step * grad_accum + micro) * W * B + rank * B, so rank r of W with batch B reads rows
    [r*B, (r+1)*B) of what one process with batch W*B reads at the same step; during it the same holds
    whenever W * a equals that single process's anneal rows.
    """

    micro_batch: int
    grad_accum: int = 1
    world_size: int = 1
    rank: int = 0
    decay_start: int | None = None  # first step that mixes in anneal rows; None: never
    anneal_mix: float = 0.0

    def __post_init__(self) -> None:
        if self.micro_batch < 1 or self.grad_accum < 1 or self.world_size < 1:
            raise ValueError("micro_batch, grad_accum and world_size must be >= 1")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world_size {self.world_size}")
        if not 0.0 <= self.anneal_mix <= 1.0:
            raise ValueError(f"anneal_mix must be in [0, 1], got {self.anneal_mix}")

    @property
    def anneal_rows(self) -> int:
        """Anneal rows per decay-phase micro-batch (round half up: 0.5 of 3 rows is 2, never banker's 1)."""
        if self.decay_start is None:
            return 0
        return math.floor(self.micro_batch * self.anneal_mix + 0.5)

    def anneal_active(self, step: int) -> bool:
        return self.anneal_rows > 0 and step >= self.decay_start

    def _consumed(self, g: int) -> tuple[int, int]:
        """(train, anneal) rows read by global micro-batches [0, g)."""
        a = self.anneal_rows
        if a == 0:
            return g * self.micro_batch, 0
        g0 = self.decay_start * self.grad_accum * self.world_size
        decayed = max(g - g0, 0)
        return min(g, g0) * self.micro_batch + decayed * (self.micro_batch - a), decayed * a

    def positions(self, step: int, micro: int) -> tuple[int, int]:
        """(train, anneal) stream positions where this rank's micro-batch starts."""
        return self._consumed((step * self.grad_accum + micro) * self.world_size + self.rank)

    def consumed(self, step: int) -> tuple[int, int]:
        """(train, anneal) rows read by all ranks in steps [0, step): the data position to checkpoint."""
        return self._consumed(step * self.grad_accum * self.world_size)

    def counts(self, step: int) -> tuple[int, int]:
        """(train, anneal) rows in each of this step's micro-batches."""
        a = self.anneal_rows if self.anneal_active(step) else 0
        return self.micro_batch - a, a


def split_rows(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, seq_len) rows -> int64 inputs row[:-1] and targets row[1:]."""
    rows = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
    return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


class Batches:
    """Micro-batches of a BatchPlan for steps [start_step, end_step), in (step, micro) order.

    Batch contents are fixed by the plan and the streams, so prefetching changes only when they are
    gathered: a thread fills a small queue ahead of the loop (pinning memory for a non-blocking copy
    to the GPU) and `wait_seconds` counts how long `get` blocked, the loop's data starvation.
    """

    def __init__(
        self,
        train: ShardSet,
        plan: BatchPlan,
        seed: int,
        anneal: ShardSet | None = None,
        start_step: int = 0,
        end_step: int | None = None,
        prefetch: int = 4,
        device: str | torch.device = "cpu",
    ):
        if plan.anneal_rows and anneal is None:
            raise ValueError("the plan mixes in anneal rows but no anneal shards were given")
        self.train, self.anneal, self.plan = train, anneal, plan
        # Separate seeds so the two splits are shuffled independently.
        self.train_stream = RowStream(len(train), seed)
        self.anneal_stream = RowStream(len(anneal), seed + 1) if anneal is not None else None
        self.device = torch.device(device)
        self.wait_seconds = 0.0
        self._next = (start_step, 0)
        self._end = end_step
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if prefetch > 0:
            self._thread = threading.Thread(target=self._fill, args=(start_step,), daemon=True)
            self._thread.start()

    def rows(self, step: int, micro: int) -> np.ndarray:
        """The rows of this rank's micro-batch: train rows, then anneal rows in the decay phase."""
        train_pos, anneal_pos = self.plan.positions(step, micro)
        n_train, n_anneal = self.plan.counts(step)
        rows = self.train.rows(self.train_stream.ids(train_pos, n_train))
        if n_anneal:
            rows = np.concatenate([rows, self.anneal.rows(self.anneal_stream.ids(anneal_pos, n_anneal))])
        return rows

    def compute(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The micro-batch as CPU tensors, computed directly (what the prefetch thread does)."""
        x, y = split_rows(self.rows(step, micro))
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def _fill(self, step: int) -> None:
        try:
            while not self._stop.is_set() and (self._end is None or step < self._end):
                for micro in range(self.plan.grad_accum):
                    item = ((step, micro), self.compute(step, micro))
                    while not self._stop.is_set():
                        try:
                            self._queue.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                step += 1
        except BaseException as exc:  # handed to the consumer, which re-raises it with its traceback
            self._queue.put((None, exc))

    def get(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) on the device; must be called in (step, micro) order from start_step."""
        if (step, micro) != self._next:
            raise RuntimeError(f"batches requested out of order: expected {self._next}, got {(step, micro)}")
        self._next = (step, micro + 1) if micro + 1 < self.plan.grad_accum else (step + 1, 0)
        if self._thread is None:
            x, y = self.compute(step, micro)
        else:
            t0 = time.perf_counter()
            key, payload = self._queue.get()
            self.wait_seconds += time.perf_counter() - t0
            if key is None:
                raise payload
            x, y = payload
        non_blocking = self.device.type == "cuda"
        return x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def val_batches(val: ShardSet, batch_size: int, num_batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed set of validation batches: the first rows of a VAL_SEED permutation, the same every eval.

    Fewer batches (the last one possibly short) when the split has fewer than batch_size * num_batches
    rows, so a small val split is used whole rather than repeated.
    """
    n = min(len(val), batch_size * num_batches)
    ids = np.sort(epoch_permutation(len(val), VAL_SEED, 0)[:n])  # sorted: sequential page reads
    rows = val.rows(ids)
    return [split_rows(rows[i : i + batch_size]) for i in range(0, n, batch_size)]
