"""The shard loader: row gathering, seeded epoch order, the step-derived batch plan, prefetch, val rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slm_curator.export.shard_format import write_shard
from slm_curator.train.data import (
    Batches,
    BatchPlan,
    RowStream,
    ShardSet,
    epoch_permutation,
    val_batches,
)

SEQ_LEN = 5
VOCAB = 1000


def _shards(folder, sizes, first_id=0):
    """Shards whose global row g is [g, g+1, ..., g+SEQ_LEN-1]: a row names its own id."""
    paths, g = [], first_id
    for i, n in enumerate(sizes):
        rows = np.arange(g, g + n)[:, None] + np.arange(SEQ_LEN)[None, :]
        paths.append(folder / f"{first_id}_{i}.bin")
        write_shard(paths[-1], rows, VOCAB, eos_id=0)
        g += n
    return paths


def _row_ids(rows) -> list[int]:
    return [int(r[0]) for r in rows]


def test_shard_set_is_one_collection_of_rows(tmp_path):
    shards = ShardSet(_shards(tmp_path, [3, 4, 2]))
    assert (len(shards), shards.seq_len, shards.vocab_size, shards.tokens) == (9, SEQ_LEN, VOCAB, 45)
    ids = np.array([8, 0, 3, 2, 6, 3])
    rows = shards.rows(ids)
    assert rows.dtype == np.int64 and rows.shape == (6, SEQ_LEN)
    assert _row_ids(rows) == ids.tolist()
    with pytest.raises(IndexError, match=r"\[0, 9\)"):
        shards.rows(np.array([9]))


def test_mismatched_shards_are_refused_with_both_names(tmp_path):
    good = _shards(tmp_path, [3])[0]
    other = tmp_path / "other.bin"
    write_shard(other, np.zeros((2, SEQ_LEN + 1), dtype=np.int64), VOCAB, eos_id=0)
    with pytest.raises(ValueError, match="seq_len=6.*seq_len=5") as err:
        ShardSet([good, other])
    assert "other.bin" in str(err.value) and good.name in str(err.value)
    small_vocab = tmp_path / "vocab.bin"
    write_shard(small_vocab, np.zeros((2, SEQ_LEN), dtype=np.int64), 500, eos_id=0)
    with pytest.raises(ValueError, match="val shards have seq_len=5, vocab_size=500"):
        ShardSet([good]).check_compatible(ShardSet([small_vocab]), "val")


def test_stream_walks_a_seeded_permutation_per_epoch_and_wraps():
    stream = RowStream(10, seed=7)
    ids = stream.ids(0, 25)
    epochs = [epoch_permutation(10, 7, e) for e in range(3)]
    assert ids.tolist() == [*epochs[0], *epochs[1], *epochs[2][:5]]
    for e in epochs:
        assert sorted(e.tolist()) == list(range(10))
    assert epochs[0].tolist() != epochs[1].tolist()
    # Stateless: any window is a slice of the whole, in any order of calls, from a fresh stream too.
    assert RowStream(10, seed=7).ids(17, 6).tolist() == ids[17:23].tolist()
    assert stream.ids(3, 4).tolist() == ids[3:7].tolist()
    assert epoch_permutation(10, 8, 0).tolist() != epochs[0].tolist()
    assert epoch_permutation(10, 7, 0).tolist() == epochs[0].tolist()


def _simulated_positions(plan_args, steps):
    """A stateful reference: walk (step, micro, rank) in order, advancing two counters by each batch."""
    train = anneal = 0
    out = {}
    for step in range(steps):
        for micro in range(plan_args["grad_accum"]):
            for rank in range(plan_args["world_size"]):
                plan = BatchPlan(rank=rank, **plan_args)
                out[step, micro, rank] = (train, anneal)
                n_train, n_anneal = plan.counts(step)
                train, anneal = train + n_train, anneal + n_anneal
        out[step + 1] = (train, anneal)
    return out


@pytest.mark.parametrize("world_size", [1, 3])
def test_positions_derive_from_the_step_alone(world_size):
    args = dict(micro_batch=4, grad_accum=2, world_size=world_size, decay_start=3, anneal_mix=0.5)
    expected = _simulated_positions(args, steps=6)
    for rank in range(world_size):
        plan = BatchPlan(rank=rank, **args)
        assert plan.anneal_rows == 2
        for step in range(6):
            assert plan.consumed(step + 1) == expected[step + 1]
            for micro in range(2):
                assert plan.positions(step, micro) == expected[step, micro, rank]
                assert plan.counts(step) == ((4, 0) if step < 3 else (2, 2))
    # The closed form: g = (step * A + micro) * W + rank, g0 = decay_start * A * W.
    plan = BatchPlan(rank=world_size - 1, **args)
    g, g0 = (4 * 2 + 1) * world_size + world_size - 1, 3 * 2 * world_size
    assert plan.positions(4, 1) == (g0 * 4 + (g - g0) * 2, (g - g0) * 2)
    assert plan.positions(1, 1) == ((1 * 2 + 1) * world_size * 4 + (world_size - 1) * 4, 0)


def test_anneal_rows_round_half_up_and_need_a_decay_start():
    assert BatchPlan(3, decay_start=0, anneal_mix=0.5).anneal_rows == 2
    assert BatchPlan(1, decay_start=0, anneal_mix=0.5).anneal_rows == 1
    assert BatchPlan(8, decay_start=0, anneal_mix=0.3).anneal_rows == 2
    assert BatchPlan(8, decay_start=0, anneal_mix=0.0).anneal_rows == 0
    assert BatchPlan(8, decay_start=None, anneal_mix=0.5).anneal_rows == 0
    assert BatchPlan(8, decay_start=None, anneal_mix=0.5).consumed(5) == (40, 0)
    with pytest.raises(ValueError, match="rank 2"):
        BatchPlan(4, world_size=2, rank=2)


def _batches(train, anneal, prefetch=0, start_step=0, **plan_args):
    plan_args.setdefault("decay_start", 3 if anneal is not None else None)
    return Batches(train, BatchPlan(**plan_args), 11, anneal, start_step, prefetch=prefetch)


@pytest.mark.parametrize("with_anneal", [False, True])
def test_ranks_together_read_what_one_process_with_the_whole_batch_reads(tmp_path, with_anneal):
    train = ShardSet(_shards(tmp_path, [13, 8]))
    anneal = ShardSet(_shards(tmp_path, [7], first_id=500)) if with_anneal else None
    common = dict(grad_accum=2, anneal_mix=0.25)
    single = _batches(train, anneal, micro_batch=8, **common)
    ranks = [_batches(train, anneal, micro_batch=4, world_size=2, rank=r, **common) for r in range(2)]
    for step in range(6):  # wraps the 21 train rows several times; steps 3+ mix in anneal rows
        for micro in range(2):
            whole = _row_ids(single.rows(step, micro))
            parts = [_row_ids(b.rows(step, micro)) for b in ranks]
            # Each micro-batch is [train rows..., anneal rows...]; compare the two kinds separately.
            n_anneal = 2 if with_anneal and step >= 3 else 0
            assert whole[: 8 - n_anneal] == sum((p[: 4 - n_anneal // 2] for p in parts), [])
            assert whole[8 - n_anneal :] == sum((p[4 - n_anneal // 2 :] for p in parts), [])
            if n_anneal:
                assert all(i >= 500 for i in whole[-n_anneal:]) and all(i < 500 for i in whole[:-n_anneal])


def test_prefetched_batches_equal_direct_ones_from_any_start_step(tmp_path):
    train = ShardSet(_shards(tmp_path, [10, 9]))
    anneal = ShardSet(_shards(tmp_path, [6], first_id=500))
    args = dict(micro_batch=3, grad_accum=2, anneal_mix=0.5)
    direct = _batches(train, anneal, **args)
    with _batches(train, anneal, prefetch=3, start_step=2, **args) as fetched:
        for step in range(2, 7):
            for micro in range(2):
                x, y = fetched.get(step, micro)
                dx, dy = direct.compute(step, micro)
                assert x.dtype == y.dtype == torch.int64 and x.shape == (3, SEQ_LEN - 1)
                assert torch.equal(x, dx) and torch.equal(y, dy)
                assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
        assert fetched.wait_seconds >= 0.0
        with pytest.raises(RuntimeError, match="out of order"):
            fetched.get(9, 0)


def test_a_plan_with_anneal_rows_needs_anneal_shards(tmp_path):
    train = ShardSet(_shards(tmp_path, [4]))
    with pytest.raises(ValueError, match="no anneal shards"):
        Batches(train, BatchPlan(2, decay_start=0, anneal_mix=0.5), seed=0)


def test_val_batches_are_fixed_and_use_a_small_split_whole(tmp_path):
    val = ShardSet(_shards(tmp_path, [30, 20]))
    first, again = val_batches(val, 4, 3), val_batches(val, 4, 3)
    assert len(first) == 3 and all(x.shape == (4, SEQ_LEN - 1) for x, _ in first)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    ids = [int(i) for x, _ in first for i in x[:, 0]]
    assert len(set(ids)) == 12 and ids != list(range(12))  # spread over the split, not its head
    small = val_batches(val, 16, 10)
    assert [len(x) for x, _ in small] == [16, 16, 16, 2]
    assert sorted(int(i) for x, _ in small for i in x[:, 0]) == list(range(50))
