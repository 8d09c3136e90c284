"""The train_quality stage: `quality_labels` -> a quality model, evaluated on held-out labels, registered.

Embeddings and features are computed in Spark with the scoring UDF's own code (so training sees
exactly what scoring will), then the head is fit on the driver: labels are annotations, thousands to
a few hundred thousand rows of ~400 numbers, which fit in memory where the documents would not.
Held-out metrics are reported per source against document length alone, the baseline a model must
beat; the confusion matrix is logged as an image; the model is registered and the alias moved.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from pyspark.sql import functions as F

from slm_curator import delta
from slm_curator.errors import ConfigError
from slm_curator.fingerprint import fingerprint
from slm_curator.quality.encoder import EncoderSpec
from slm_curator.quality.head import fit_logistic, fit_ordinal, fit_ridge
from slm_curator.quality.labels import LABELS_TABLE
from slm_curator.quality.metrics import auc, confusion, spearman, to_int
from slm_curator.quality.model import QualityModel
from slm_curator.stage import Stage, StageContext, StageResult

log = logging.getLogger(__name__)

POSITIVE_TARGET = 3.0  # AUC on 0-5 sources: "educational" (FineWeb-Edu keeps score >= 3)
ANY_VALUE_TARGET = 1.0  # AUC on 0-5 sources: any value at all against none (spam, menus, listings)


def model_spec(m) -> EncoderSpec:
    return EncoderSpec(
        location=m.encoder,
        max_tokens=m.max_tokens,
        max_chunks=m.max_chunks,
        pooling=m.pooling,
        chunking=m.chunking,
        chunk_words=m.chunk_words,
    )


def head_inputs(spark, cfg, frame, text_column: str = "text") -> tuple[np.ndarray, list]:
    """[embedding, features] of every row (computed in Spark), with the rows' other columns and
    `_words` (the length baseline)."""
    from slm_curator.quality.score import inputs_udf, payload, spread, task_threads

    m = cfg.quality.model
    described = {"encoder": model_spec(m).to_dict(), "features": list(m.features)}
    spec = payload(described, "", cfg.score, task_threads(spark, cfg.score))
    words = F.size(F.split(F.trim(F.coalesce(F.col(text_column), F.lit(""))), r"\s+"))
    rows = (
        spread(frame, m.batch_docs)
        .withColumns({"_x": inputs_udf(spec)(F.col(text_column)), "_words": words})
        .drop(text_column)
        .collect()
    )
    x = np.asarray([r["_x"] for r in rows], dtype=np.float64)
    return x, rows


def fit_head(m, x: np.ndarray, target: np.ndarray, weight: np.ndarray):
    if m.head == "logistic":
        return fit_logistic(x, (target >= m.binary_threshold).astype(float), m.alpha, weight)
    if m.head == "ordinal":
        return fit_ordinal(x, target, m.alpha, weight)
    return fit_ridge(x, target, m.alpha, weight)


def evaluate(pred: np.ndarray, length: np.ndarray, rows: list, filter_keep: dict | None = None) -> dict:
    """Per source on the test split: Spearman and AUC of the model and of length alone."""
    out = {}
    sources = sorted({r["source"] for r in rows})
    target = np.asarray([r["target"] for r in rows], dtype=float)
    src = np.asarray([r["source"] for r in rows])
    kind = np.asarray([r["kind"] for r in rows])
    for s in sources:
        mask = src == s
        if mask.sum() < 2:
            continue
        out[s] = {
            "n": int(mask.sum()),
            "spearman": spearman(pred[mask], target[mask]),
            "spearman_length": spearman(length[mask], target[mask]),
            "auc": auc(pred[mask], target[mask] >= POSITIVE_TARGET),
            "auc_length": auc(length[mask], target[mask] >= POSITIVE_TARGET),
            "auc_any": auc(pred[mask], target[mask] >= ANY_VALUE_TARGET),
            "auc_any_length": auc(length[mask], target[mask] >= ANY_VALUE_TARGET),
        }
    # Reference vs web: positives and negatives are different sources, scored as one set.
    ref = (kind == "reference") | (kind == "web_negative")
    if ref.any() and len(set(kind[ref])) == 2:
        out["reference_vs_web"] = {
            "n": int(ref.sum()),
            "auc": auc(pred[ref], kind[ref] == "reference"),
            "auc_length": auc(length[ref], kind[ref] == "reference"),
        }
    return out


def _confusion_image(matrix: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(v),
            ha="center",
            va="center",
            fontsize=8,
            color="black" if v < matrix.max() / 2 else "white",
        )
    ax.set_xlabel("predicted quality_int")
    ax.set_ylabel("label (rounded)")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _labels(spark, cfg):
    ref = delta.table_ref(cfg.storage, LABELS_TABLE)
    version = delta.current_version(spark, ref)
    if version is None:
        raise FileNotFoundError(f"{LABELS_TABLE}: no table; run the labels stage first (jobs/labels.py)")
    frame = delta.read(spark, ref, version).where(F.col("ok") & F.col("target").isNotNull())
    m = cfg.quality.model
    unknown = sorted(set(m.sources) - {r[0] for r in frame.select("source").distinct().collect()})
    if unknown:
        raise ConfigError(f"quality.model.sources: {unknown[0]!r} is not a source in {LABELS_TABLE}")
    for name, factor in m.sources.items():
        frame = frame.withColumn(
            "weight", F.when(F.col("source") == name, F.col("weight") * factor).otherwise(F.col("weight"))
        )
    return frame.where(F.col("weight") > 0), version


def _previous(cfg, stamp: str) -> str | None:
    """The registered version already trained from this stamp (labels version + config), if any."""
    m = cfg.quality.model
    if not m.register_as:
        return None
    from mlflow import MlflowClient

    try:
        for mv in MlflowClient().search_model_versions(f"name = '{m.register_as}'"):
            if (mv.tags or {}).get("slm_stamp") == stamp:
                return mv.version
    except Exception:  # noqa: BLE001 - no registry yet
        return None
    return None


def train_quality_work(ctx: StageContext) -> StageResult:
    spark, cfg = ctx.spark, ctx.cfg
    m = cfg.quality.model
    frame, labels_version = _labels(spark, cfg)
    stamp = fingerprint({"labels_version": labels_version, "model": m, "format": 1})
    done = _previous(cfg, stamp)
    if done is not None:
        uri = f"models:/{m.register_as}/{done}"
        return StageResult(
            0,
            0,
            0,
            location=uri,
            notes=[f"nothing new: {uri} was trained from {LABELS_TABLE}@v{labels_version} with this config"],
        )
    x, rows = head_inputs(
        spark, cfg, frame.select("label_id", "source", "kind", "text", "target", "weight", "split")
    )
    if not len(rows):
        raise ConfigError(f"{LABELS_TABLE}: no usable labels (ok, with a target, weight > 0)")
    split = np.asarray([r["split"] for r in rows])
    target = np.asarray([r["target"] for r in rows], dtype=float)
    weight = np.asarray([r["weight"] for r in rows], dtype=float)
    train, test = split == "train", split == "test"
    if train.sum() < 10:
        raise ConfigError(f"{LABELS_TABLE}: {int(train.sum())} training labels; need at least 10")
    head = fit_head(m, x[train], target[train], weight[train])
    length = np.asarray([r["_words"] for r in rows], dtype=float)
    pred = head.predict(x)
    test_rows = [r for r, t in zip(rows, test, strict=True) if t]
    metrics = evaluate(pred[test], length[test], test_rows)
    graded = np.asarray([r["kind"] in ("imported", "llm") for r in test_rows])
    matrix = confusion(to_int(target[test][graded]), to_int(pred[test][graded])) if graded.any() else None

    model = QualityModel(
        model_spec(m),
        list(m.features),
        head,
        record={
            "trained_on": f"{LABELS_TABLE}@v{labels_version}",
            "labels": {
                s: int(((np.asarray([r["source"] for r in rows]) == s) & train).sum())
                for s in sorted({r["source"] for r in rows})
            },
            "settings": {
                "head": m.head,
                "alpha": m.alpha,
                "sources": m.sources,
                "binary_threshold": m.binary_threshold,
            },
            "held_out": metrics,
            "confusion_matrix": matrix.tolist() if matrix is not None else None,
        },
    )
    flat = {
        f"{src}.{k}": float(v)
        for src, d in metrics.items()
        for k, v in d.items()
        if isinstance(v, int | float) and np.isfinite(v)
    }
    ctx.tracker.log_metrics(flat)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / "quality_model")
        export_for_spark_nlp(folder)
        if matrix is not None:
            _confusion_image(
                matrix, Path(tmp) / "quality_confusion.png", "held-out labels: label vs predicted"
            )
            ctx.tracker.log_artifact(str(Path(tmp) / "quality_confusion.png"))
        (Path(tmp) / "quality_metrics.json").write_text(json.dumps(metrics, indent=1))
        ctx.tracker.log_artifact(str(Path(tmp) / "quality_metrics.json"))
        uri = register(folder, m, stamp) if ctx.tracker.enabled else str(folder)
    details = {
        src: ", ".join(
            f"{k} {v:.3f}" for k, v in d.items() if k != "n" and isinstance(v, float) and np.isfinite(v)
        )
        + f" (n={d['n']})"
        for src, d in metrics.items()
    }
    return StageResult(
        input_rows=len(rows),
        output_rows=int(train.sum()),
        new_rows=len(rows),
        location=uri,
        details=details,
        metrics={"train_labels": float(train.sum()), "test_labels": float(test.sum())},
    )


def export_for_spark_nlp(folder: Path) -> None:
    """A model Spark NLP can run carries its encoder as Spark NLP imports it (ONNX + vocabulary), so
    `score.backend=sparknlp` reads it from the registered model rather than exporting on the driver."""
    from slm_curator.quality import spark_nlp
    from slm_curator.quality.encoder import resolve_encoder_path
    from slm_curator.quality.model import load_model

    saved = load_model(folder)
    if not spark_nlp.unsupported(saved):
        spark_nlp.export_encoder(
            resolve_encoder_path(saved.encoder_spec().location), folder / spark_nlp.EXPORT_DIR
        )


def register(folder: Path, m, stamp: str) -> str:
    """Log the model folder as an MLflow pyfunc model; register it and point the alias at it."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    import slm_curator

    example = pd.DataFrame({"text": ["Photosynthesis turns light into chemical energy."]})
    info = mlflow.pyfunc.log_model(
        name="quality_model",
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts={"model_dir": str(folder)},
        code_paths=[str(Path(slm_curator.__file__).parent)],
        signature=infer_signature(example, pd.DataFrame({"quality_score": [2.5]})),
        pip_requirements=["torch", "transformers", "tokenizers", "pandas", "numpy"],
        registered_model_name=m.register_as or None,
    )
    if not m.register_as or info.registered_model_version is None:
        return info.model_uri
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_model_version_tag(m.register_as, version, "slm_stamp", stamp)
    if m.alias:
        client.set_registered_model_alias(m.register_as, m.alias, version)
        return f"models:/{m.register_as}@{m.alias} (version {version})"
    return f"models:/{m.register_as}/{version}"


STAGE = Stage(
    name="train_quality",
    description="quality_labels -> a quality model (frozen encoder + linear head), evaluated and registered",
    work=train_quality_work,
    in_default=False,
)
