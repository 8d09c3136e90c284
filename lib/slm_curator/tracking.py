"""MLflow tracking: one parent run per pipeline invocation, one child run per stage, table lineage.

Each stage run carries the flattened config as params, row counts as metrics, and every Delta table it
read or wrote as an MLflow dataset pinned to the table's version, so "which documents trained this
model" is answerable from the tracking server alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slm_curator.config import ConfigError, PipelineConfig
from slm_curator.delta import TableRef
from slm_curator.fingerprint import fingerprint

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 6000


def resolve_tracking_uri(cfg: PipelineConfig) -> str:
    """Config wins, then MLFLOW_TRACKING_URI, then a sqlite store inside the data directory."""
    if cfg.tracking.tracking_uri:
        return cfg.tracking.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if "://" in cfg.storage.root:
        raise ConfigError(
            f"tracking.tracking_uri: storage.root is remote ({cfg.storage.root}); set tracking.tracking_uri "
            "(or MLFLOW_TRACKING_URI) to an MLflow server or database"
        )
    folder = Path(cfg.storage.root) / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder.resolve() / 'mlflow.db'}"


class Tracker:
    """Thin wrapper that keeps MLflow calls in one place and makes tracking optional."""

    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self.enabled = cfg.tracking.enabled
        self.uri = ""
        self.experiment_id = ""
        if self.enabled:
            import mlflow

            # A local store is cheap to open, but its first use runs schema migrations: keep them quiet.
            logging.getLogger("alembic").setLevel(logging.WARNING)
            self.uri = resolve_tracking_uri(cfg)
            mlflow.set_tracking_uri(self.uri)
            self.experiment_id = self._experiment(cfg.tracking.experiment)

    def _experiment(self, name: str) -> str:
        import mlflow

        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        artifacts = None
        if self.uri.startswith("sqlite:///"):
            # Keep artifacts next to the store instead of ./mlruns in whatever the cwd happens to be.
            artifacts = (Path(self.uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
        return mlflow.create_experiment(name, artifact_location=artifacts)

    @contextmanager
    def pipeline_run(self, name: str, tags: dict[str, str] | None = None) -> Iterator[str | None]:
        """The parent run; yields its run id (None when tracking is off)."""
        if not self.enabled:
            yield None
            return
        import mlflow

        with mlflow.start_run(experiment_id=self.experiment_id, run_name=name, tags=tags) as run:
            mlflow.log_params(_params(self.cfg.flat()))
            yield run.info.run_id

    @contextmanager
    def stage_run(self, stage: str) -> Iterator[str | None]:
        """A child run of the active pipeline run (or a top-level run when a stage runs alone)."""
        if not self.enabled:
            yield None
            return
        import mlflow

        parent = mlflow.active_run()
        ctx = mlflow.start_run(
            experiment_id=self.experiment_id, run_name=stage, nested=parent is not None, tags={"stage": stage}
        )
        with ctx as run:
            mlflow.log_params(_params(self.cfg.flat()))
            yield run.info.run_id

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.enabled and metrics:
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_curve(self, name: str, values: dict[int, float]) -> None:
        """A whole metric history at once (step -> value), in batches: one call per thousand points."""
        if not self.enabled or not values:
            return
        import time

        import mlflow
        from mlflow.entities import Metric

        run_id, now = mlflow.active_run().info.run_id, int(time.time() * 1000)
        points = [Metric(name, float(v), now, int(k)) for k, v in sorted(values.items())]
        client = mlflow.MlflowClient()
        for i in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[i : i + 1000])

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled and tags:
            import mlflow

            mlflow.set_tags(tags)

    def log_table(self, ref: TableRef, version: int | None, context: str) -> None:
        """Record a Delta table at a version as this run's input or output dataset.

        A metadata-only dataset (DeltaDatasetSource + version): no Spark job runs to log lineage.
        """
        if not self.enabled or version is None:
            return
        import mlflow
        from mlflow.data.delta_dataset_source import DeltaDatasetSource
        from mlflow.data.meta_dataset import MetaDataset

        where = {"path": ref.identifier} if ref.is_path else {"delta_table_name": ref.identifier}
        source = DeltaDatasetSource(delta_table_version=version, **where)
        digest = fingerprint([ref.identifier, version])
        mlflow.log_input(
            MetaDataset(source=source, name=ref.name, digest=digest),
            context=context,
            tags={"delta_version": str(version)},
        )
        mlflow.set_tag(f"{context}.{ref.name}", f"{ref.identifier}@v{version}")

    def log_artifact(self, path: str, folder: str | None = None) -> None:
        if self.enabled and path and Path(path).exists():
            import mlflow

            mlflow.log_artifact(path, folder)

    def active_run_id(self) -> str | None:
        if not self.enabled:
            return None
        import mlflow

        run = mlflow.active_run()
        return run.info.run_id if run else None

    def log_histograms(self, histograms: dict[str, list[tuple[float, float]]], name: str) -> None:
        """Histograms as JSON (bins of centre x, count y) and as one PNG grid, for the MLflow UI."""
        if not self.enabled or not histograms:
            return
        import json
        import math
        import tempfile

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mlflow

        cols = 5
        rows = math.ceil(len(histograms) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.2, rows * 2.4), squeeze=False)
        for ax, (signal, bins) in zip(axes.flat, histograms.items(), strict=False):
            if bins:
                xs, ys = zip(*bins, strict=True)
                width = (max(xs) - min(xs)) / max(len(xs), 1) or 1.0
                ax.bar(xs, ys, width=width * 0.9)
            ax.set_title(signal, fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(histograms) :]:
            ax.axis("off")
        fig.tight_layout()
        with tempfile.TemporaryDirectory() as tmp:
            fig.savefig(f"{tmp}/{name}.png", dpi=90)
            with open(f"{tmp}/{name}.json", "w") as fh:
                json.dump({k: [list(b) for b in v] for k, v in histograms.items()}, fh, indent=1)
            mlflow.log_artifact(f"{tmp}/{name}.png")
            mlflow.log_artifact(f"{tmp}/{name}.json")
        plt.close(fig)

    def run_link(self, run_id: str | None) -> str:
        if not self.enabled or not run_id:
            return "tracking disabled"
        if self.uri.startswith("sqlite:///"):
            return f"run {run_id} (view: mlflow ui --backend-store-uri {self.uri})"
        return f"{self.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}"


def _params(flat: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:MAX_PARAM_CHARS] for k, v in flat.items()}
