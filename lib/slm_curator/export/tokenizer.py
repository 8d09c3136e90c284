"""Byte-level BPE tokenizers: trained on the curated corpus, or loaded from a file, folder or MLflow URI.

Byte-level BPE (GPT-2's scheme, HF `tokenizers`) never meets an unknown character, and training it is
deterministic for the same texts in the same order, which keeps exported shards byte-identical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

TOKENIZER_FILE = "tokenizer.json"


class TokenizerError(ValueError):
    """A tokenizer could not be found or lacks the end-of-text token; the message says which."""


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int, eos_token: str) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def load_tokenizer(location: str) -> Tokenizer:
    """A tokenizer.json file, a folder holding one, or an MLflow artifact URI (runs:/, models:/, ...)."""
    if "://" in location or location.startswith(("runs:/", "models:/")):
        import mlflow

        location = mlflow.artifacts.download_artifacts(artifact_uri=location)
    path = Path(location)
    if path.is_dir():
        found = sorted(path.rglob(TOKENIZER_FILE))
        if not found:
            raise TokenizerError(f"export.tokenizer.path: no {TOKENIZER_FILE} under {location}")
        path = found[0]
    if not path.is_file():
        raise TokenizerError(f"export.tokenizer.path: {location} does not exist")
    return Tokenizer.from_file(str(path))


def eos_id(tok: Tokenizer, eos_token: str) -> int:
    token_id = tok.token_to_id(eos_token)
    if token_id is None:
        raise TokenizerError(
            f"export.tokenizer.eos_token: {eos_token!r} is not in the tokenizer's vocabulary; "
            "set it to the tokenizer's end-of-text token"
        )
    return token_id


def tokenizer_sha(tok: Tokenizer) -> str:
    return hashlib.sha256(tok.to_str().encode()).hexdigest()


def encode_with_eos(tok: Tokenizer, texts: list[str], eos: int) -> list[list[int]]:
    """Token ids of each text followed by end-of-text, so packed documents stay separable."""
    return [enc.ids + [eos] for enc in tok.encode_batch(texts, add_special_tokens=False)]
