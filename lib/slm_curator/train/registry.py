"""Trained models as self-contained folders and MLflow pyfunc models: weights, config, tokenizer together.

A model is only usable with the tokenizer it was trained with, so both travel in one folder (and one
registered MLflow model). `load_generator` takes that folder, a checkpoint's folder, or any MLflow URI
(`models:/name/version`, `models:/name@alias`, `runs:/id/model`) and returns something that writes text.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from slm_curator.export.shard_format import MANIFEST_FILE
from slm_curator.export.tokenizer import TOKENIZER_FILE
from slm_curator.train.generate import generate
from slm_curator.train.model import GPT, ModelConfig

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"


def save_model_dir(folder: str | Path, model: GPT, tokenizer_path: str, eos_id: int, meta: dict) -> Path:
    """Weights (fp32 state dict), model config, tokenizer and provenance in one folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    torch.save(state, folder / WEIGHTS_FILE)
    config = {"model": dataclasses.asdict(model.config), "eos_id": eos_id, **meta}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True))
    (folder / TOKENIZER_FILE).write_bytes(Path(tokenizer_path).read_bytes())
    return folder


@dataclass
class TextGenerator:
    """A model, its tokenizer and end-of-text id: prompts in, completions out."""

    model: GPT
    tokenizer: object
    eos_id: int
    meta: dict

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def complete(
        self,
        prompts: list[str],
        max_new_tokens: int = 64,
        temperature: float = 0.8,
        top_k: int = 0,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> list[str]:
        """One completion per prompt, each from its own seeded generator: batch-independent results."""
        out = []
        for i, prompt in enumerate(prompts):
            ids = self.tokenizer.encode(prompt).ids or [self.eos_id]
            gen = torch.Generator(device=self.device).manual_seed(seed + i)
            idx = torch.tensor([ids], dtype=torch.long, device=self.device)
            full = generate(self.model, idx, max_new_tokens, temperature, top_k, top_p, self.eos_id, gen)
            new = [t for t in full[0, len(ids) :].tolist() if t != self.eos_id]
            out.append(self.tokenizer.decode(new))
        return out


def load_generator(location: str, device: str = "cpu") -> TextGenerator:
    """From a model folder, a training checkpoint file, or an MLflow URI whose artifacts hold a model folder."""
    from tokenizers import Tokenizer

    folder = Path(location)
    if folder.suffix == ".pt" and folder.is_file():
        return _checkpoint_generator(folder, device)
    if not (folder / CONFIG_FILE).is_file():
        import mlflow

        downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=location))
        found = sorted(p.parent for p in downloaded.rglob(CONFIG_FILE) if (p.parent / WEIGHTS_FILE).is_file())
        if not found:
            raise FileNotFoundError(
                f"{location}: no {CONFIG_FILE} + {WEIGHTS_FILE} model folder in its artifacts"
            )
        folder = found[0]
    config = json.loads((folder / CONFIG_FILE).read_text())
    model = GPT(ModelConfig(**config["model"]))
    model.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    model.to(device).eval()
    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    return TextGenerator(model, tokenizer, int(config["eos_id"]), config)


def log_model(folder: str | Path, registered_name: str = "") -> str:
    """Log the folder as an MLflow pyfunc model in the active run; register it when a name is given.

    Returns the model URI (models:/name/version when registered).
    """
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    import slm_curator

    example = pd.DataFrame({"prompt": ["Once upon a time"]})
    signature = infer_signature(
        example,
        pd.DataFrame({"completion": [" there was"]}),
        params={"max_new_tokens": 64, "temperature": 0.8, "top_k": 0, "top_p": 0.95, "seed": 0},
    )
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts={"model_dir": str(folder)},
        code_paths=[str(Path(slm_curator.__file__).parent)],
        signature=signature,
        input_example=example,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "tokenizers", "pandas"],
        registered_model_name=registered_name or None,
    )
    if registered_name and info.registered_model_version is not None:
        return f"models:/{registered_name}/{info.registered_model_version}"
    return info.model_uri


def _checkpoint_generator(path: Path, device: str) -> TextGenerator:
    """A checkpoint's weights with the tokenizer and manifest the train stage copies beside it."""
    from tokenizers import Tokenizer

    from slm_curator.train.trainer import load_model

    manifest_path = path.parent / MANIFEST_FILE
    if not (path.parent / TOKENIZER_FILE).is_file() or not manifest_path.is_file():
        raise FileNotFoundError(
            f"{path}: no {TOKENIZER_FILE} and manifest.json beside it; not a train-stage checkpoint"
        )
    model, state = load_model(path, device)
    manifest = json.loads(manifest_path.read_text())
    meta = {"step": state["step"], "checkpoint": str(path), "shards_fingerprint": manifest["fingerprint"]}
    return TextGenerator(
        model, Tokenizer.from_file(str(path.parent / TOKENIZER_FILE)), manifest["eos_id"], meta
    )
