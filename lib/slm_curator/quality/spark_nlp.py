"""The score stage's Spark NLP backend: a words-chunked quality model run in the JVM, no Python worker.

Spark NLP's `E5Embeddings` runs an ONNX encoder over document annotations (mean pooling over word
pieces, one unit vector each). Each row's word windows are built in Spark SQL exactly as
`encoder.word_windows` builds them (Java's whitespace split, windows of `chunk_words`, thinned by the
same integer rule), so the windows reach the encoder as they do in Python; their vectors are pooled
by word count and the linear head is applied as SQL expressions. Two limits of Spark NLP 5.5.3 shape
it: `batchSize` 1 (a batch is pooled with its first document's attention mask), and text spaced
around punctuation first (its basic tokenizer does not split at every character that BERT's does,
curly quotes among them).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from slm_curator.errors import ConfigError
from slm_curator.quality.head import SCORE_MAX

log = logging.getLogger(__name__)

EXPORT_DIR = "spark_nlp"  # inside a model folder: model.onnx + assets/vocab.txt, what loadSavedModel reads
JAVA_WHITESPACE = r"[ \t\n\x0B\f\r]+"  # what encoder.JVM_WHITESPACE matches, in Java's syntax
# BERT's punctuation (ASCII symbols and Unicode P*) and CJK ideographs, each spaced as BERT splits them.
BERT_SPLITS = r"([!-/:-@\[-`{-~\p{P}\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{F900}-\x{FAFF}\x{20000}-\x{2CEAF}\x{2F800}-\x{2FA1F}])"
# What BERT's text cleaning drops (the encoder's tokenizer: control, format, unassigned and private-use
# characters but tab and line breaks, and U+FFFD) and what it reads as a space (Unicode's White_Space
# less those dropped: the space separators, line and paragraph separators). Spark NLP's tokenizer
# does neither, so the windows are cleaned this way before they reach it.
BERT_DROPS = r"[\p{Cc}\p{Cf}\p{Cn}\p{Co}\x{FFFD}&&[^\t\n\r]]"
BERT_SPACES = r"[\p{Zs}\x{2028}\x{2029}]"
# str.splitlines()'s separators, so a line count matches the filters' n_lines.
# str.isspace()'s characters, for "only whitespace" as Python's str.strip() sees it.
PY_SPACE = r"[\s\x1C-\x1F\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
LINE_BREAKS = r"\r\n|[\n\r\x0B\f\x1C\x1D\x1E\x{85}\x{2028}\x{2029}]"


def _n_lines(text: Column) -> Column:
    """len(text.splitlines()), or 0 when the text is only whitespace (the filters' n_lines)."""
    pieces = F.size(F.split(text, LINE_BREAKS))
    trailing = F.regexp_like(text, F.lit(f"({LINE_BREAKS})\\z")).cast("int")
    blank = F.regexp_like(text, F.lit(f"\\A{PY_SPACE}*\\z"))
    return F.when(blank, F.lit(0)).otherwise(pieces - trailing)


# Features a head may read that Spark SQL reproduces exactly (features.DERIVED on the same text).
SQL_FEATURES: dict[str, Callable[[Column], Column]] = {
    "log_chars": lambda text: F.log1p(F.char_length(text).cast("double")),
    "log_lines": lambda text: F.log1p(_n_lines(text).cast("double")),
}


def unsupported(model) -> str:
    """Why Spark NLP cannot run `model` ("" when it can): only what the SQL side reproduces, that is
    word windows, mean pooling and SQL-computable features."""
    spec = model.encoder
    if spec.chunking != "words":
        return (
            f"score.backend: sparknlp needs a model chunked by words (quality.model.chunking=words), "
            f"this one is chunked by {spec.chunking}; allowed values for score.backend with it: torch, onnx"
        )
    if spec.pooling != "mean":
        return (
            f"score.backend: sparknlp pools windows by their mean; the model pools by {spec.pooling} "
            "(quality.model.pooling=mean to train one it can run)"
        )
    other = [f for f in model.features if f not in SQL_FEATURES]
    if other:
        return (
            f"score.backend: sparknlp computes only these features in Spark SQL: {', '.join(SQL_FEATURES)}; "
            f"the model reads {', '.join(other)} (quality.model.features)"
        )
    return ""


def check_model(model) -> None:
    reason = unsupported(model)
    if reason:
        raise ConfigError(reason)


def word_windows(text: Column, chunk_words: int, max_chunks: int) -> tuple[Column, Column]:
    """(windows, word counts) per row: `encoder.word_windows` as Spark SQL; empty text: no window."""
    words = F.filter(F.split(F.coalesce(text, F.lit("")), JAVA_WHITESPACE), lambda w: w != "")
    n = F.size(words)
    windows = F.ceil(n / chunk_words).cast("int")
    k = min(max_chunks, 2**31 - 1)
    if k == 1:
        thinned = F.array(F.lit(0))
    else:
        thinned = F.transform(
            F.sequence(F.lit(0), F.lit(k - 1)),
            lambda i: ((2 * i * (windows - 1) + (k - 1)) / (2 * (k - 1))).cast("long").cast("int"),
        )
    picks = F.when(n == 0, F.array().cast("array<int>")).otherwise(
        F.when(windows <= k, F.sequence(F.lit(0), windows - 1)).otherwise(thinned)
    )
    texts = F.transform(picks, lambda p: F.array_join(F.slice(words, p * chunk_words + 1, chunk_words), " "))
    counts = F.transform(picks, lambda p: F.least(F.lit(chunk_words), n - p * chunk_words).cast("double"))
    return texts, counts


@lru_cache(maxsize=1)
def accent_map() -> tuple[str, str]:
    """(from, to) for `translate`: every character whose canonical decomposition, less its combining
    marks, is one other character (é -> e, ガ -> カ, й -> и), as uncased BERT strips accents."""
    import sys
    import unicodedata

    src, dst = [], []
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        if unicodedata.category(c) == "Cs":
            continue
        base = "".join(x for x in unicodedata.normalize("NFD", c) if unicodedata.category(x) != "Mn")
        if len(base) == 1 and base != c:
            src.append(c)
            dst.append(base)
    return "".join(src), "".join(dst)


HANGUL = "[\uac00-\ud7a3]"


def _jamo(cp: Column) -> Column:
    """The character U+1100..U+11FF with code point `cp`, from its three UTF-8 bytes (E1 xx xx)."""
    return F.decode(
        F.unhex(F.concat(F.lit("E1"), F.hex(128 + (cp / 64).cast("int") % 64), F.hex(128 + cp % 64))), "UTF-8"
    )


def _hangul_decomposed(text: Column) -> Column:
    """Hangul syllables written as their jamo (NFD's algorithmic decomposition), as BERT sees them."""
    chars = F.split(text, "(?<=.)(?=.)")  # between code points, so no surrogate pair is cut

    def one(c: Column) -> Column:
        s = F.ascii(c) - 0xAC00
        lead, vowel, tail = 0x1100 + (s / 588).cast("int"), 0x1161 + (s % 588 / 28).cast("int"), s % 28
        syllable = F.concat(
            _jamo(lead), _jamo(vowel), F.when(tail > 0, _jamo(0x11A7 + tail)).otherwise(F.lit(""))
        )
        return F.when(F.regexp_like(c, F.lit(HANGUL)), syllable).otherwise(c)

    return F.when(F.regexp_like(text, F.lit(HANGUL)), F.array_join(F.transform(chars, one), "")).otherwise(
        text
    )


def bert_spaced(window: Column) -> Column:
    """A window normalised and split as uncased BERT's basic tokenizer does it, written out with
    spaces (module note): control characters dropped, Unicode spaces made spaces, accents stripped
    (canonical decomposition less combining marks, Hangul as jamo), punctuation and CJK ideographs
    spaced apart. Spark NLP's tokenizer then only has to split at spaces and lower-case."""
    cleaned = F.regexp_replace(F.regexp_replace(window, BERT_DROPS, ""), BERT_SPACES, " ")
    stripped = F.regexp_replace(F.translate(cleaned, *accent_map()), "\\p{Mn}", "")
    return F.regexp_replace(_hangul_decomposed(stripped), BERT_SPLITS, " $1 ")


def export_encoder(encoder_folder: Path, target: Path) -> Path:
    """The encoder as Spark NLP imports it: `model.onnx` (inputs input_ids, attention_mask and
    token_type_ids; output last_hidden_state) and `assets/vocab.txt`; written atomically."""
    import json

    import torch
    from transformers import AutoModel

    if target.exists():
        return target
    inner = AutoModel.from_pretrained(str(encoder_folder), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):  # keyword inputs: the encoder's positional order varies by version
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    (tmp / "assets").mkdir(parents=True, exist_ok=True)
    ids = torch.ones(1, 16, dtype=torch.long)
    log.info("score: exporting %s for Spark NLP at %s", encoder_folder, target)
    torch.onnx.export(
        Hidden().eval(),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(tmp / "model.onnx"),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        | {"last_hidden_state": {0: "batch", 1: "tokens"}},
        opset_version=17,
        dynamo=False,
    )
    vocab = encoder_folder / "vocab.txt"
    if vocab.exists():
        shutil.copy(vocab, tmp / "assets" / "vocab.txt")
    else:  # a tokenizer.json only: its WordPiece vocabulary in id order
        pieces = json.loads((encoder_folder / "tokenizer.json").read_text())["model"]["vocab"]
        ordered = sorted(pieces, key=pieces.get)
        (tmp / "assets" / "vocab.txt").write_text("\n".join(ordered) + "\n")
    os.replace(tmp, target)
    return target


def exported_encoder(model) -> Path:
    """The model's Spark NLP export: inside its folder (an MLflow artifact when registered), else
    exported once into the user cache, keyed by the encoder's weights."""
    from slm_curator.quality.encoder import _cache_dir, _digest, resolve_encoder_path

    if model.folder is not None and (model.folder / EXPORT_DIR / "model.onnx").exists():
        return model.folder / EXPORT_DIR
    folder = resolve_encoder_path(model.encoder_spec().location)
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    return export_encoder(folder, _cache_dir() / f"{_digest(weights)}-spark-nlp")


def embeddings(spark, folder: Path, max_tokens: int):
    """Spark NLP's E5Embeddings over our export, one window per ONNX call (see the module note)."""
    try:
        from sparknlp.annotator import E5Embeddings
    except ImportError as exc:
        raise ConfigError(
            "score.backend: sparknlp needs the Python package spark-nlp (pip install 'slm-curator[nlp]')"
        ) from exc
    try:
        model = E5Embeddings.loadSavedModel(str(folder), spark)
    except Exception as exc:
        if "ClassNotFound" in str(exc) or "JavaPackage" in str(exc) or "not callable" in str(exc):
            raise ConfigError(
                "score.backend: sparknlp needs Spark NLP's jar on the cluster (spark.packages gets "
                "spark_nlp locally; on a cluster install maven.packages.spark_nlp)"
            ) from exc
        raise
    return (
        model.setInputCols(["slm_windows_doc"])
        .setOutputCol("slm_windows_emb")
        .setBatchSize(1)
        .setMaxSentenceLength(max_tokens)
        .setCaseSensitive(False)
    )


def _dot(values: Column, weights: list[float]) -> Column:
    coef = F.array(*[F.lit(float(w)) for w in weights])
    return F.aggregate(F.zip_with(values, coef, lambda v, c: v * c), F.lit(0.0), lambda s, x: s + x)


def head_expression(model, vector: Column, text: Column) -> Column:
    """The linear head on [vector, features] with its standardisation folded into the weights."""
    head = model.head
    dim = head.coef.shape[-1] - len(model.features)
    features = [F.least(F.greatest(SQL_FEATURES[n](text), F.lit(-10.0)), F.lit(10.0)) for n in model.features]

    def linear(coef, intercept) -> Column:
        a = coef / head.scale
        z = _dot(vector, a[:dim].tolist()) + F.lit(float(intercept - (head.mean * a).sum()))
        for j, value in enumerate(features):  # clipped as features.CLIP
            z = z + value * F.lit(float(a[dim + j]))
        return z

    def sigmoid(z: Column) -> Column:
        return 1 / (1 + F.exp(-F.least(F.greatest(z, F.lit(-40.0)), F.lit(40.0))))

    if head.kind == "ordinal":
        steps = [sigmoid(linear(c, b)) for c, b in zip(head.coef, head.intercept, strict=True)]
        total = F.lit(float(head.base))
        for step in steps:
            total = total + step
        return F.least(F.greatest(total, F.lit(0.0)), F.lit(SCORE_MAX))
    z = linear(head.coef, head.intercept)
    if head.kind == "logistic":
        return F.lit(SCORE_MAX) * sigmoid(z)
    return F.least(F.greatest(z, F.lit(0.0)), F.lit(SCORE_MAX))


def add_score(frame: DataFrame, text_column: str, model, empty_vector: list[float]) -> DataFrame:
    """`frame` with `quality_score` from Spark NLP; `empty_vector` is the encoder's vector of an empty
    text ([CLS][SEP]), which E5Embeddings never computes (it skips empty documents).

    One plan, no join: each row is carried whole through its windows (one row per window, as Spark
    NLP's annotators read a string column) and gathered again by a key drawn once, before the explode.
    """
    from sparknlp.base import DocumentAssembler

    check_model(model)
    spec = model.encoder
    spark = frame.sparkSession
    text = F.coalesce(F.col(text_column), F.lit(""))
    windows, counts = word_windows(text, spec.chunk_words, spec.max_chunks)
    pairs = F.arrays_zip(windows.alias("w"), counts.alias("n"))
    # The key in its own projection: beside the generator it would be drawn once per window.
    keyed = frame.select(
        F.monotonically_increasing_id().alias("slm_key"),
        F.struct(*[F.col(f"`{c}`") for c in frame.columns]).alias("slm_row"),
        pairs.alias("slm_pairs"),
    )
    exploded = keyed.select(
        "slm_key", "slm_row", F.posexplode_outer("slm_pairs").alias("slm_pos", "slm_window")
    )
    spaced = bert_spaced(F.coalesce(F.col("slm_window.w"), F.lit("")))
    assembler = DocumentAssembler().setInputCol("slm_text").setOutputCol("slm_windows_doc")
    annotated = embeddings(spark, exported_encoder(model), spec.max_tokens).transform(
        assembler.transform(exploded.withColumn("slm_text", spaced))
    )
    window = F.struct(
        F.col("slm_pos").alias("pos"),
        F.col("slm_windows_emb")[0]["embeddings"].alias("v"),
        F.coalesce(F.col("slm_window.n"), F.lit(0.0)).alias("n"),
    )
    gathered = annotated.groupBy("slm_key").agg(
        F.first("slm_row").alias("slm_row"), F.array_sort(F.collect_list(window)).alias("slm_windows")
    )
    dim = len(empty_vector)
    found = F.filter(F.col("slm_windows"), lambda x: x["v"].isNotNull() & (x["n"] > 0))
    summed = F.aggregate(
        found,
        F.array_repeat(F.lit(0.0), dim),
        lambda acc, x: F.zip_with(acc, x["v"], lambda s, v: s + v * x["n"]),
    )
    norm = F.sqrt(F.aggregate(summed, F.lit(0.0), lambda s, v: s + v * v))
    unit = F.transform(summed, lambda v: v / F.greatest(norm, F.lit(1e-12)))
    empty = F.array(*[F.lit(float(v)) for v in empty_vector])
    vector = F.when(F.size(found) == 0, empty).otherwise(unit)
    row_text = F.coalesce(F.col(f"slm_row.`{text_column}`"), F.lit(""))
    return gathered.select(
        *[F.col(f"slm_row.`{c}`").alias(c) for c in frame.columns],
        head_expression(model, vector, row_text).alias("quality_score"),
    )
