"""Token shard files: a 1 KiB header of int32 fields, then fixed-length sequences of uint16/uint32 tokens.

The layout is llm.c's (a 256 x int32 header before a flat token array) so a shard is one `np.memmap`
away from a batch: no parsing, no Python objects per token, and readers on any host agree byte for byte.
Each row holds `seq_len` tokens: a model with context `seq_len - 1` reads inputs `row[:-1]` and
targets `row[1:]`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0x534C4D53  # "SLMS"
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
# Beside the shards of one export: its splits, tokenizer and provenance (what a Spark-free trainer reads).
MANIFEST_FILE = "manifest.json"


class ShardFormatError(ValueError):
    """A file is not a shard of this format (or is truncated); the message names the file."""


@dataclass(frozen=True)
class ShardHeader:
    token_bytes: int  # 2 (uint16) when the vocabulary fits, else 4 (uint32)
    seq_len: int  # tokens per row
    sequences: int
    vocab_size: int
    eos_id: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("<u2") if self.token_bytes == 2 else np.dtype("<u4")

    @property
    def tokens(self) -> int:
        return self.sequences * self.seq_len


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def encode_header(h: ShardHeader) -> bytes:
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:7] = [MAGIC, VERSION, h.token_bytes, h.seq_len, h.sequences, h.vocab_size, h.eos_id]
    return header.tobytes()


def write_shard(path: str | Path, sequences: np.ndarray, vocab_size: int, eos_id: int) -> str:
    """Write rows atomically (temp file + rename) and return the file's sha256.

    A crash mid-write leaves no file at `path`, so "the file exists" can be trusted by re-runs.
    """
    sequences = np.asarray(sequences)
    if sequences.ndim != 2:
        raise ValueError(f"sequences must be 2-D (rows, seq_len), got shape {sequences.shape}")
    if sequences.size and (sequences.min() < 0 or sequences.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}); got {sequences.min()}..{sequences.max()}")
    dtype = token_dtype(vocab_size)
    header = ShardHeader(dtype.itemsize, sequences.shape[1], sequences.shape[0], vocab_size, eos_id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as f:
        for chunk in (encode_header(header), sequences.astype(dtype, copy=False).tobytes()):
            digest.update(chunk)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return digest.hexdigest()


def read_header(path: str | Path) -> ShardHeader:
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise ShardFormatError(f"{path}: shorter than the {HEADER_BYTES}-byte header")
    fields = np.frombuffer(raw, dtype="<i4")
    if fields[0] != MAGIC:
        raise ShardFormatError(f"{path}: bad magic {fields[0]:#x}; not a slm-curator token shard")
    if fields[1] != VERSION:
        raise ShardFormatError(f"{path}: format version {fields[1]}, this reader knows {VERSION}")
    header = ShardHeader(*(int(x) for x in fields[2:7]))
    expected = HEADER_BYTES + header.tokens * header.token_bytes
    if path.stat().st_size != expected:
        raise ShardFormatError(f"{path}: {path.stat().st_size} bytes, header promises {expected}")
    return header


def open_shard(path: str | Path) -> tuple[ShardHeader, np.ndarray]:
    """Header and a read-only (sequences, seq_len) memory map: pages load only when rows are read."""
    header = read_header(path)
    rows = np.memmap(
        path, dtype=header.dtype, mode="r", offset=HEADER_BYTES, shape=(header.sequences, header.seq_len)
    )
    return header, rows


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
