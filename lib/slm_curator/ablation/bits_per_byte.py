"""Held-out loss in bits per UTF-8 byte: comparable across tokenizers and with published numbers.

Nats per token depend on how many bytes a token covers, so two tokenizers (or one tokenizer on two
kinds of text) cannot be compared by it. Bits per byte divide the summed negative log-likelihood of
every token by ln 2 and by the bytes of the text those tokens spell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class HeldOutLoss:
    bits_per_byte: float
    nats_per_token: float
    tokens: int  # predicted tokens, every document's EOS included
    bytes: int  # UTF-8 bytes of the documents


def token_stream(docs: Sequence[Sequence[int]], eos: int) -> np.ndarray:
    """EOS, then each document followed by EOS: the first real token is predicted from EOS, as in training."""
    parts = [np.asarray([eos], dtype=np.int64)]
    for ids in docs:
        parts.append(np.asarray(list(ids) + [eos], dtype=np.int64))
    return np.concatenate(parts)


def windows(stream: np.ndarray, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping (input, target) windows covering every token after the first; targets pad with -1."""
    n = len(stream) - 1
    rows = max(1, math.ceil(n / context))
    x = np.zeros((rows, context), dtype=np.int64)
    y = np.full((rows, context), -1, dtype=np.int64)
    for r in range(rows):
        a, b = r * context, min(n, (r + 1) * context)
        x[r, : b - a] = stream[a:b]
        y[r, : b - a] = stream[a + 1 : b + 1]
    return torch.from_numpy(x), torch.from_numpy(y)


@torch.no_grad()
def held_out_loss(
    model: torch.nn.Module,
    docs: Sequence[Sequence[int]],
    texts: Sequence[str],
    eos: int,
    context: int,
    batch_rows: int = 16,
) -> HeldOutLoss:
    """Summed next-token loss of `docs` (token ids of `texts`) under `model`, per byte and per token."""
    if len(docs) != len(texts) or not docs:
        raise ValueError("held_out_loss needs one token list per text, and at least one text")
    x, y = windows(token_stream(docs, eos), context)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(x), batch_rows):
        xb, yb = x[i : i + batch_rows].to(device), y[i : i + batch_rows].to(device)
        logits, _ = model(xb, yb)
        total += torch.nn.functional.cross_entropy(
            logits.float().flatten(0, 1), yb.flatten(), ignore_index=-1, reduction="sum"
        ).item()
        count += int((yb >= 0).sum())
    model.train(was_training)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return HeldOutLoss(total / math.log(2) / n_bytes, total / count, count, n_bytes)
