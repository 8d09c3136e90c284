"""MinHash signatures and LSH band keys for a batch of documents, vectorised with numpy (no Spark).

Shingles are word n-grams hashed to 64 bits. Each word is hashed once per batch (dictionary-encoded
by Arrow first, so a batch's vocabulary, not its tokens, pays for the hashing); n-gram hashes are a
rolling mix of word hashes over the whole batch at once. A permutation is x -> a*x + b mod 2^64 with odd a, applied
to well-mixed shingle hashes, and a signature is the minimum per permutation, taken in fixed-size
blocks so one 10 MB document costs bounded memory. A document with fewer words than the shingle size
gets one shingle of all its words: its own signature, never a shared empty one. A document without
words has no signature and so no band keys: it can only be an exact duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

MAX = np.uint64(np.iinfo(np.uint64).max)
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_MIX = np.uint64(0x9E3779B97F4A7C15)
BLOCK_ROWS = 16384  # shingles per block: num_perm x BLOCK_ROWS uint64 values (15 MB at 112) at once


def _finalize(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit (the rolling mix alone does not)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _C1
    x = x ^ (x >> np.uint64(27))
    x = x * _C2
    return x ^ (x >> np.uint64(31))


def word_hashes(words, seed: int) -> np.ndarray:
    """64-bit hash of every word (uint64), each distinct word hashed once; `words`: str list or Arrow."""
    arr = words if isinstance(words, pa.Array) else pa.array(words, pa.large_string())
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    encoded = arr.dictionary_encode()
    uniques = encoded.dictionary.to_numpy(zero_copy_only=False)  # 10x faster than to_pylist
    table = np.fromiter(
        (xxhash.xxh3_64_intdigest(w, seed) for w in uniques), dtype=np.uint64, count=len(uniques)
    )
    return table[encoded.indices.to_numpy(zero_copy_only=False)]


def _combine(hashes: list[np.ndarray]) -> np.ndarray:
    acc = hashes[0].copy()
    for h in hashes[1:]:
        acc = (acc * _MIX) ^ h
    return _finalize(acc)


@dataclass(frozen=True)
class MinHasher:
    num_perm: int = 112
    bands: int = 14
    rows: int = 8
    ngram: int = 5
    seed: int = 1

    def __post_init__(self):
        if self.bands * self.rows > self.num_perm:
            raise ValueError("bands x rows must not exceed num_perm")
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, 2**63, size=self.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        b = rng.integers(0, 2**63, size=self.num_perm, dtype=np.uint64)
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_b", b)

    def shingles(self, docs) -> list[np.ndarray]:
        """Per document, its shingle hashes in order (duplicates kept; a set is not needed for a minimum).

        `docs`: one word list per document, or the Arrow list array `normalize_batch` returns."""
        if not isinstance(docs, pa.Array):
            docs = pa.array(docs, pa.large_list(pa.large_string()))
        lengths = pc.list_value_length(docs).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = word_hashes(docs.flatten(), self.seed)
        starts = np.concatenate(([0], np.cumsum(lengths)))
        n = self.ngram
        out: list[np.ndarray] = []
        if len(flat) >= n:
            windows = _combine([flat[j : len(flat) - n + 1 + j] for j in range(n)])
        else:
            windows = np.zeros(0, dtype=np.uint64)
        for i, m in enumerate(lengths):
            s = starts[i]
            if m >= n:
                out.append(windows[s : s + m - n + 1])  # windows starting inside the document
            elif m > 0:
                out.append(_combine([flat[s + j : s + j + 1] for j in range(m)]))
            else:
                out.append(np.zeros(0, dtype=np.uint64))
        return out

    def shingle_sets(self, docs: list[list[str]]) -> list[np.ndarray]:
        """Per document, its distinct shingle hashes, sorted (for exact Jaccard)."""
        return [_distinct_sorted(s) for s in self.shingles(docs)]

    def signatures(self, shingles: list[np.ndarray]) -> np.ndarray:
        """(documents, num_perm) uint64 minima; a row of MAX for a document without shingles.

        Permutations are rows and shingles columns, so each document's minimum is a `reduceat` over
        contiguous memory (3x faster than the transposed layout), in one reused buffer per call.
        """
        sig = np.full((self.num_perm, len(shingles)), MAX, dtype=np.uint64)
        if not shingles:
            return sig.T
        lengths = np.fromiter((len(s) for s in shingles), dtype=np.int64, count=len(shingles))
        if lengths.sum() == 0:
            return sig.T
        flat = np.concatenate(shingles)
        owner = np.repeat(np.arange(len(shingles)), lengths)
        a, b = self._a[:, None], self._b[:, None]
        buf = np.empty((self.num_perm, min(BLOCK_ROWS, len(flat))), dtype=np.uint64)
        for start in range(0, len(flat), BLOCK_ROWS):
            block, own = flat[start : start + BLOCK_ROWS], owner[start : start + BLOCK_ROWS]
            values = buf[:, : len(block)]
            np.multiply(a, block[None, :], out=values)
            np.add(values, b, out=values)
            first = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
            docs = own[first]  # distinct: a document's shingles are contiguous
            sig[:, docs] = np.minimum(sig[:, docs], np.minimum.reduceat(values, first, axis=1))
        return np.ascontiguousarray(sig.T)

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """(documents, bands) int64: one hash per band of `rows` minima (equal keys: a candidate pair)."""
        r = self.rows
        keys = np.empty((sig.shape[0], self.bands), dtype=np.uint64)
        for band in range(self.bands):
            cols = [sig[:, band * r + j] for j in range(r)]
            keys[:, band] = _combine([np.full(sig.shape[0], band, dtype=np.uint64), *cols])
        return keys.view(np.int64)


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """np.unique without its overhead (a tenth of the time on a page's few hundred shingles)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def distinct_count(values: np.ndarray) -> int:
    return len(_distinct_sorted(values))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two sorted sets of shingle hashes (two empty sets: 0, they share nothing)."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.mean(sig_a == sig_b))
