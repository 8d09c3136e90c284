"""The train stage: find the shards, train (one process, torchrun or TorchDistributor), log and register.

The trainer itself knows nothing of MLflow or Delta; this module ties it to the pipeline: the shards
come from the newest export in the `shards` table (read with delta-rs, no Spark needed), metrics stream
to the stage's MLflow run, and the final model is logged with its tokenizer, registered, and linked to
the `shards` table version it was trained on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from slm_curator import delta
from slm_curator.config import PipelineConfig
from slm_curator.export.shard_format import MANIFEST_FILE
from slm_curator.export.tokenizer import TOKENIZER_FILE
from slm_curator.fingerprint import fingerprint
from slm_curator.stage import Stage, StageContext, StageResult
from slm_curator.tracking import Tracker

log = logging.getLogger(__name__)

REGISTERED_FILE = "registered.json"
# Fields that change how a run is launched or reported, not what it computes: they stay out of the
# checkpoint folder's name, so changing them resumes the same run.
_NOT_TRAJECTORY = {
    "checkpoint_dir",
    "resume",
    "register_as",
    "log_every",
    "max_seconds",
    "launcher",
    "shards",
    "distributor_local_mode",
    "keep_every",
    "eval_every",
    "eval_batches",
    "checkpoint_every",
}


@dataclass
class TrainSummary:
    shards_folder: str
    shards_version: int | None
    checkpoint_dir: str
    step: int
    max_steps: int
    num_params: int
    val_loss: float | None
    unigram_val_loss: float | None
    tokens_per_second: float
    mfu: float | None
    data_wait_fraction: float
    train_seconds: float
    resumed_from: int | None
    model_uri: str | None
    notes: list[str] = field(default_factory=list)


def find_shards(cfg: PipelineConfig, spark=None) -> tuple[Path, dict, int | None]:
    """The shard folder (train.shards, else the newest export listed in `shards`), its manifest, table version."""
    ref = delta.table_ref(cfg.storage, "shards")
    version = None
    if cfg.train.shards:
        folder = Path(cfg.train.shards)
    else:
        if ref.is_path:
            from deltalake import DeltaTable

            if not Path(ref.identifier, "_delta_log").is_dir():
                raise FileNotFoundError(
                    f"train.shards: empty and no shards table at {ref}; run the export stage first"
                )
            table = DeltaTable(ref.identifier)
            version = table.version()
            rows = table.to_pyarrow_table(columns=["path", "created_at"]).to_pylist()
        else:
            rows = [r.asDict() for r in delta.read(spark, ref).select("path", "created_at").collect()]
            version = delta.current_version(spark, ref)
        if not rows:
            raise FileNotFoundError(
                f"train.shards: the shards table {ref} is empty; run the export stage first"
            )
        newest = max(rows, key=lambda r: (r["created_at"], r["path"]))
        folder = Path(newest["path"]).parent
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"train.shards: {folder} has no {MANIFEST_FILE}; not an export folder")
    return folder, json.loads(manifest_path.read_text()), version


def split_paths(folder: Path, manifest: dict) -> dict[str, list[str]]:
    return {
        split: [str(folder / name) for name in names] for split, names in manifest["splits"].items() if names
    }


def checkpoint_dir(cfg: PipelineConfig, manifest: dict) -> Path:
    """One folder per (shards, trajectory-relevant config): a re-run resumes, a new config starts fresh."""
    if cfg.train.checkpoint_dir:
        return Path(cfg.train.checkpoint_dir)
    relevant = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k not in _NOT_TRAJECTORY}
    digest = fingerprint(relevant, 10)
    return Path(cfg.storage.root) / "checkpoints" / f"{manifest['fingerprint']}-{digest}"


def train_worker(cfg: PipelineConfig) -> None:
    """What ranks > 0 of torchrun run: the same training, with reporting left to rank 0."""
    from slm_curator.train.trainer import train

    spark = None
    if cfg.storage.catalog:
        from slm_curator.spark import get_spark

        spark = get_spark(cfg)
    folder, manifest, _ = find_shards(cfg, spark)
    train(cfg.train, split_paths(folder, manifest), checkpoint_dir(cfg, manifest))


def _launch(cfg: PipelineConfig, tracker: Tracker, splits: dict[str, list[str]], ckpt: Path):
    """Train in this process (plain or torchrun rank 0) or through TorchDistributor; (model, final metrics)."""
    from slm_curator.train.trainer import load_model, train, train_from_dict

    if cfg.train.launcher != "torch_distributor":

        def on_log(step, metrics):
            tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)}, step=step)
            log.info(
                "train: step %d/%d loss %.4f (%.0f tokens/s)",
                step,
                cfg.train.max_steps,
                metrics["loss"],
                metrics.get("tokens_per_second") or 0.0,
            )

        def on_eval(step, metrics):
            tracker.log_metrics(metrics, step=step)
            log.info("train: step %d val loss %.4f", step, metrics["val_loss"])

        outcome = train(cfg.train, splits, ckpt, on_log=on_log, on_eval=on_eval)
        return outcome.model, outcome.summary()

    import torch
    from pyspark.ml.torch.distributor import TorchDistributor

    use_gpu = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    distributor = TorchDistributor(
        num_processes=cfg.train.num_processes, local_mode=cfg.train.distributor_local_mode, use_gpu=use_gpu
    )
    log.info("train: launching %d processes with TorchDistributor", cfg.train.num_processes)
    result = distributor.run(train_from_dict, dataclasses.asdict(cfg.train), splits, str(ckpt))
    for step, loss in enumerate(result["train_losses"], start=1):
        tracker.log_metrics({"loss": loss}, step=step)
    for step, loss in result["val_losses"].items():
        tracker.log_metrics({"val_loss": loss}, step=int(step))
    model, _ = load_model(ckpt)
    return model, dict(result)


def _unigram_baseline(splits: dict[str, list[str]], vocab_size: int, tracker: Tracker) -> float | None:
    from slm_curator.train.trainer import unigram_cross_entropy

    if not splits.get("val"):
        return None
    baseline = unigram_cross_entropy(splits["train"], splits["val"], vocab_size)
    tracker.log_metrics({"unigram_val_loss": baseline})
    log.info("train: unigram baseline on the validation split: %.4f nats/token", baseline)
    return baseline


def run_train(cfg: PipelineConfig, tracker: Tracker, spark=None) -> TrainSummary:
    from slm_curator.train.registry import log_model, save_model_dir

    folder, manifest, shards_version = find_shards(cfg, spark)
    splits = split_paths(folder, manifest)
    ckpt = checkpoint_dir(cfg, manifest)
    # The tokenizer and the export's manifest travel with the checkpoints, so any checkpoint can generate.
    ckpt.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / manifest["tokenizer"], ckpt / TOKENIZER_FILE)
    (ckpt / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tracker.log_table(delta.table_ref(cfg.storage, "shards"), shards_version, "input")
    tracker.set_tags({"shards.fingerprint": manifest["fingerprint"], "shards.folder": str(folder)})
    baseline = _unigram_baseline(splits, manifest["vocab_size"], tracker)
    model, final = _launch(cfg, tracker, splits, ckpt)
    summary = TrainSummary(
        shards_folder=str(folder),
        shards_version=shards_version,
        checkpoint_dir=str(ckpt),
        step=final["step"],
        max_steps=cfg.train.max_steps,
        num_params=final["num_params"],
        val_loss=final["final_val_loss"],
        unigram_val_loss=baseline,
        tokens_per_second=final["tokens_per_second"],
        mfu=final["mfu"],
        data_wait_fraction=final["data_wait_fraction"],
        train_seconds=final["train_seconds"],
        resumed_from=final["resumed_from"],
        model_uri=None,
    )
    finals = {
        "final_val_loss": summary.val_loss,
        "num_params": summary.num_params,
        "tokens_per_second_final": summary.tokens_per_second,
        "mfu_final": summary.mfu,
        "data_wait_fraction_final": summary.data_wait_fraction,
    }
    tracker.log_metrics({k: v for k, v in finals.items() if v is not None})
    summary.model_uri = _publish(
        cfg, tracker, model, folder, manifest, ckpt, summary, save_model_dir, log_model
    )
    return summary


def _publish(cfg, tracker, model, folder, manifest, ckpt, summary, save_model_dir, log_model) -> str | None:
    """Save the model folder and log/register it once per finished checkpoint (re-runs reuse the URI)."""
    marker = ckpt / REGISTERED_FILE
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("step") == summary.step:
            summary.notes.append(
                f"nothing new: step {summary.step} is already trained and logged as {done['uri']}"
            )
            return done["uri"]
    meta = {
        "shards_folder": str(folder),
        "shards_fingerprint": manifest["fingerprint"],
        "shards_table_version": summary.shards_version,
        "input_table": manifest["input_table"],
        "input_version": manifest["input_version"],
        "step": summary.step,
        "val_loss": summary.val_loss,
        "unigram_val_loss": summary.unigram_val_loss,
    }
    model_dir = save_model_dir(
        ckpt / "model", model, str(folder / manifest["tokenizer"]), manifest["eos_id"], meta
    )
    if not tracker.enabled:
        return str(model_dir)
    uri = log_model(model_dir, cfg.train.register_as)
    marker.write_text(json.dumps({"step": summary.step, "uri": uri}))
    return uri


def train_work(ctx: StageContext) -> StageResult:
    result = run_train(ctx.cfg, ctx.tracker, ctx.spark)
    details: dict[str, int | str] = {
        "parameters": result.num_params,
        "steps": f"{result.step}/{result.max_steps}",
    }
    if result.val_loss is not None:
        details["validation loss (nats/token)"] = f"{result.val_loss:.4f}"
    if result.unigram_val_loss is not None:
        details["unigram baseline (nats/token)"] = f"{result.unigram_val_loss:.4f}"
    if result.tokens_per_second:
        mfu = f" (MFU {result.mfu:.1%})" if result.mfu else ""
        details["tokens/s"] = f"{result.tokens_per_second:.0f}{mfu}"
        details["time waiting for data"] = f"{result.data_wait_fraction:.1%}"
    notes = list(result.notes)
    if result.resumed_from is not None and result.resumed_from < result.max_steps:
        notes.append(f"resumed from the checkpoint at step {result.resumed_from}")
    notes.append(f"checkpoints: {result.checkpoint_dir}")
    return StageResult(
        input_rows=result.step,
        output_rows=result.step,
        new_rows=result.step - (result.resumed_from or 0),
        location=result.model_uri or result.checkpoint_dir,
        notes=notes,
        details=details,
    )


STAGE = Stage(
    name="train",
    description="token shards -> GPT checkpoints, logged and registered in MLflow (works under torchrun)",
    work=train_work,
    # Spark only when TorchDistributor launches the workers or `shards` is a Unity Catalog table.
    needs_spark=lambda cfg: cfg.train.launcher == "torch_distributor" or bool(cfg.storage.catalog),
    worker=train_worker,
)
