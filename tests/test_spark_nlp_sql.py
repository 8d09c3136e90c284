"""The Spark SQL half of the Spark NLP backend, on any Spark line: word windows, line counts and the
head must equal their Python counterparts exactly, so that only the encoder can differ between
backends (tests/test_spark_nlp.py compares the two end to end on the 3.5 line)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from pyspark.sql import functions as F

from slm_curator.errors import ConfigError
from slm_curator.quality import spark_nlp
from slm_curator.quality.encoder import word_windows
from slm_curator.quality.features import feature_matrix
from slm_curator.quality.head import LinearHead
from slm_curator.quality.model import DEFAULT_MODEL_DIR, DEFAULT_WORDS_MODEL_DIR, load_model

pytestmark = [pytest.mark.spark]

TEXTS = [
    "",
    "   \n\t ",
    "one",
    "two words",
    "no\u00a0break\u00a0spaces stay\u2003inside words as Java's \\s sees them",
    "lines\r\nwith windows\rbreaks\n\nand a trailing newline\n",
    "form\x0cfeed and\x0bvertical tab\u2028line separator\u2029paragraph\x85next line",
    "\u6771\u4eac\u306e\u5929\u6c17\u306f\u6674\u308c\u3067\u3059\u3002 mixed \u0645\u0631\u062d\u0628\u0627 text",
    " ".join(f"w{i}" for i in range(1000)),
    "\n".join(f"line {i} of a list" for i in range(333)) + "\n",
]


def test_windows_reach_spark_nlp_split_as_bert_splits_them(spark):
    """After `bert_spaced`, splitting at spaces and lower-casing (all Spark NLP's tokenizer does with
    it) gives the words the encoder's own tokenizer sees: accents, kana marks, Hangul, ideographs,
    punctuation, control characters and Unicode spaces included."""
    from tests.test_spark_nlp import EDGE_CASES
    from tokenizers import Tokenizer

    from slm_curator.quality.encoder import resolve_encoder_path
    from slm_curator.quality.model import load_model

    folder = resolve_encoder_path(load_model(DEFAULT_WORDS_MODEL_DIR).encoder_spec().location)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    texts = [*TEXTS, *EDGE_CASES, "ctrl\x00\x07chars\u200b\ufeff soft\u00adhyphen \ufffd", "Ａｂｃ１２３ ﬁ ①"]
    frame = spark.createDataFrame(list(enumerate(texts)), "i int, text string")
    words = F.filter(F.split(F.lower(spark_nlp.bert_spaced(F.col("text"))), "\\s+"), lambda w: w != "")
    rows = frame.select("i", words.alias("w")).orderBy("i").collect()
    for row, text in zip(rows, texts, strict=True):
        expected = [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text))]
        assert row["w"] == expected, text[:60]


@pytest.mark.parametrize("chunk_words,max_chunks", [(128, 8), (7, 1), (5, 3), (64, 100)])
def test_sql_word_windows_equal_the_python_ones(spark, chunk_words, max_chunks):
    frame = spark.createDataFrame([(i, t) for i, t in enumerate(TEXTS)], "i int, text string")
    windows, counts = spark_nlp.word_windows(F.col("text"), chunk_words, max_chunks)
    rows = frame.select("i", windows.alias("w"), counts.alias("n")).orderBy("i").collect()
    for row, text in zip(rows, TEXTS, strict=True):
        expected = word_windows(text, chunk_words, max_chunks)
        if expected == [("", 0)]:  # no words: Python embeds one empty window, SQL uses its vector
            assert row["w"] == [] and row["n"] == []
        else:
            assert list(zip(row["w"], row["n"], strict=True)) == [(w, float(n)) for w, n in expected], text[
                :40
            ]


def test_sql_features_equal_the_filters(spark):
    frame = spark.createDataFrame([(i, t) for i, t in enumerate(TEXTS)], "i int, text string")
    names = list(spark_nlp.SQL_FEATURES)
    cols = [spark_nlp.SQL_FEATURES[n](F.col("text")).alias(n) for n in names]
    rows = frame.select("i", *cols).orderBy("i").collect()
    expected = feature_matrix(TEXTS, names)
    got = np.array([[r[n] for n in names] for r in rows])
    assert np.allclose(got, expected, atol=1e-6), np.c_[got, expected]


@pytest.mark.parametrize("kind", ["ordinal", "ridge", "logistic"])
def test_sql_head_equals_the_python_head(spark, kind):
    model = load_model(DEFAULT_WORDS_MODEL_DIR)
    rng = np.random.default_rng(3)
    dim = model.head.coef.shape[-1] - len(model.features)
    if kind != "ordinal":  # the shipped head's first step, standing in for a ridge or logistic head
        h = model.head
        model.head = LinearHead(kind, h.mean, h.scale, h.coef[0] * 3, float(h.intercept[0]))
    h = model.head  # embeddings spread as the training set's were, so the scores spread too
    vectors = h.mean[:dim] + h.scale[:dim] * rng.normal(size=(len(TEXTS), dim))
    frame = spark.createDataFrame(
        [(i, t, v.tolist()) for i, (t, v) in enumerate(zip(TEXTS, vectors, strict=True))],
        "i int, text string, v array<double>",
    )
    score = spark_nlp.head_expression(model, F.col("v"), F.col("text"))
    got = np.array([r["s"] for r in frame.select("i", score.alias("s")).orderBy("i").collect()])
    expected = model.head.predict(model.inputs(vectors.astype(np.float32), TEXTS))
    assert np.allclose(got, expected, atol=1e-5), np.c_[got, expected]
    assert len(set(np.round(expected, 3))) > 1 and all(0.0 <= s <= 5.0 for s in got)


def test_models_spark_nlp_cannot_run_are_refused_naming_the_key():
    assert spark_nlp.unsupported(load_model(DEFAULT_WORDS_MODEL_DIR)) == ""
    tokens = load_model(DEFAULT_MODEL_DIR)
    with pytest.raises(ConfigError, match=r"quality.model.chunking=words.*allowed values.*torch, onnx"):
        spark_nlp.check_model(tokens)
    tokens.encoder = dataclasses.replace(tokens.encoder, chunking="words")
    with pytest.raises(ConfigError, match=r"only these features in Spark SQL: log_chars, log_lines"):
        spark_nlp.check_model(tokens)
    tokens.features = ["log_chars"]
    tokens.encoder = dataclasses.replace(tokens.encoder, pooling="max")
    with pytest.raises(ConfigError, match=r"quality.model.pooling=mean"):
        spark_nlp.check_model(tokens)


def test_the_words_model_records_what_it_measured():
    record = load_model(DEFAULT_WORDS_MODEL_DIR).record
    held = record["held_out"]
    assert held and all(math.isfinite(d["spearman"]) for d in held.values())


@pytest.mark.model
def test_training_ships_the_spark_nlp_export_with_a_words_model_only(tmp_path):
    from slm_curator.quality.train import export_for_spark_nlp

    words = load_model(DEFAULT_WORDS_MODEL_DIR).save(tmp_path / "words")
    export_for_spark_nlp(words)
    export = words / spark_nlp.EXPORT_DIR
    assert (export / "model.onnx").stat().st_size > 10_000_000
    vocab = (export / "assets" / "vocab.txt").read_text().splitlines()
    assert vocab[:1] == ["[PAD]"] and "[CLS]" in vocab and len(vocab) > 30_000
    assert spark_nlp.exported_encoder(load_model(words)) == export  # read from the model, not re-exported
    tokens = load_model(DEFAULT_MODEL_DIR).save(tmp_path / "tokens")
    export_for_spark_nlp(tokens)
    assert not (tokens / spark_nlp.EXPORT_DIR).exists()
