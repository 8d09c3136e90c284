"""Sampling from a GPT: temperature, top-k and nucleus filtering, greedy decoding, per-row stop tokens.

Plain torch with no cache: every step re-runs the (cropped) context, as nanoGPT does. That is cheap
at the sizes trained here and keeps one code path for the CLI and the LLM-judge evaluation.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Scale (..., V) logits by 1/temperature, then set tokens outside top-k and outside the nucleus to -inf.

    Filters apply in that order (as Hugging Face does), so top_p measures mass in the tempered,
    top-k-truncated distribution. The nucleus is the smallest set of most likely tokens whose
    probability reaches top_p; it always holds at least the most likely token. Tokens tied with the
    k-th logit are all kept. top_k 0/None and top_p 1.0 switch a filter off. Greedy decoding
    (temperature 0) is argmax, which the caller does instead of calling this.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 here (argmax for temperature 0), got {temperature!r}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 or None = off), got {top_k!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1.0 = off), got {top_p!r}")
    logits = logits / temperature
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p; the first never is.
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = 0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend each row of idx (B, T) by up to max_new_tokens tokens; returns (B, T + n_generated).

    The model sees at most its block_size most recent tokens. temperature 0 decodes greedily. Once a
    row samples eos_id it is finished: its later positions are eos_id, and the loop ends early when
    every row is finished (so the result can be shorter than T + max_new_tokens); eos_id tokens in the
    prompt do not count. Sampling draws only from `generator` (on idx's device) when one is given, so
    a seeded generator reproduces the output. The model runs in eval mode and gets its mode back.
    """
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"idx must be (batch, time) with time >= 1, got shape {tuple(idx.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens!r}")
    block_size = model.config.block_size
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -block_size:])
            logits = logits[:, -1, :].float()
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = F.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)
            if eos_id is not None:
                next_id = next_id.masked_fill(finished[:, None], eos_id)
                finished |= next_id[:, 0] == eos_id
            idx = torch.cat((idx, next_id), dim=1)
            if eos_id is not None and bool(finished.all()):
                break
    finally:
        model.train(was_training)
    return idx
