"""Bits per byte, passages and paired arm statistics: the ablation's arithmetic, without Spark."""

import math

import numpy as np
import pytest
import torch

from slm_curator.ablation.bits_per_byte import held_out_loss, token_stream, windows
from slm_curator.ablation.passages import passages
from slm_curator.ablation.stats import summarise


def test_windows_predict_every_token_once_from_the_leading_eos():
    stream = token_stream([[5, 6, 7], [8], [9, 10]], eos=0)
    assert stream.tolist() == [0, 5, 6, 7, 0, 8, 0, 9, 10, 0]
    x, y = windows(stream, context=4)
    targets = y[y >= 0].tolist()
    assert targets == stream[1:].tolist()  # every token after the first, once, in order
    for r in range(x.shape[0]):  # each target is the token right after its input
        for c in range(4):
            if y[r, c] >= 0:
                assert (int(x[r, c]), int(y[r, c])) == (stream[r * 4 + c], stream[r * 4 + c + 1])
    assert x.shape == (3, 4) and (y[-1] == -1).sum() == 3


class _Uniform(torch.nn.Module):
    """A model whose every next-token distribution is uniform over `vocab`: its loss is known exactly."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, y):
        return torch.zeros(*x.shape, self.vocab) + self.dummy, None


def test_bits_per_byte_of_a_uniform_model_is_log2_vocab_times_tokens_per_byte():
    texts = ["héllo wörld", "a b c", "ünïcode ☃ text"]
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    loss = held_out_loss(_Uniform(50), docs, texts, eos=0, context=4, batch_rows=2)
    tokens = sum(len(d) + 1 for d in docs)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    assert loss.tokens == tokens and loss.bytes == n_bytes
    assert loss.nats_per_token == pytest.approx(math.log(50))
    assert loss.bits_per_byte == pytest.approx(math.log2(50) * tokens / n_bytes)


def test_bits_per_byte_does_not_depend_on_the_window_size_for_a_context_free_model():
    docs = [list(range(1, 40)), list(range(3, 17))]
    texts = ["x" * 100, "y" * 30]
    a = held_out_loss(_Uniform(64), docs, texts, eos=0, context=8)
    b = held_out_loss(_Uniform(64), docs, texts, eos=0, context=64)
    assert a == b


def test_passages_keep_paragraphs_whole_and_reach_the_size():
    paras = [f"Paragraph {i} " + "word " * (i * 7 % 30 + 5) for i in range(40)]
    text = "\n\n".join(p.strip() for p in paras)
    out = list(passages(text, 300))
    assert "\n\n".join(out).split("\n\n") == [p.strip() for p in paras]  # nothing lost, nothing split
    assert all(len(p) >= 300 for p in out[:-1])
    long = "z" * 5000
    assert list(passages(long + "\n\n  \n\nshort", 1000)) == [long, "short"]


def test_summarise_pairs_differences_by_seed():
    values = {
        "raw": {0: 2.0, 1: 2.2, 2: 2.4},
        "curated": {0: 1.9, 1: 2.1, 2: 2.3},  # 0.1 better on every seed, though the seeds spread widely
        "noisy": {0: 2.5, 1: 1.9},
    }
    stats = {s.arm: s for s in summarise(values, "raw", "clean_bpb", ["raw", "curated", "noisy"])}
    assert stats["raw"].diff is None and stats["raw"].seeds == 3
    assert stats["raw"].low < 2.2 < stats["raw"].high
    c = stats["curated"]
    assert c.diff == pytest.approx(-0.1) and c.diff_low == pytest.approx(-0.1) and c.excludes_zero
    # The unpaired intervals overlap; only the paired difference shows the gain.
    assert c.low < stats["raw"].mean
    n = stats["noisy"]
    assert n.seeds == 2 and n.diff == pytest.approx(np.mean([0.5, -0.3])) and not n.excludes_zero


def test_every_run_warms_up_for_ablation_warmup_steps_or_the_train_jobs_when_zero(tmp_path):
    import dataclasses

    from slm_curator.ablation.job import run_train_config
    from slm_curator.config import PipelineConfig

    cfg = PipelineConfig()
    run = run_train_config(cfg, 3, tmp_path)
    assert (run.warmup_steps, run.max_steps, run.seed) == (
        cfg.ablation.warmup_steps,
        cfg.ablation.steps,
        3,
    )
    assert cfg.ablation.warmup_steps != cfg.train.warmup_steps  # the ablation's own default is used
    fallback = dataclasses.replace(cfg, ablation=dataclasses.replace(cfg.ablation, warmup_steps=0))
    assert run_train_config(fallback, 3, tmp_path).warmup_steps == cfg.train.warmup_steps
