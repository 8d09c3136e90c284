"""Model folders and MLflow registration: what is saved loads back and writes the same text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from slm_curator.export.tokenizer import eos_id, load_tokenizer, train_tokenizer
from slm_curator.train.model import GPT, model_config
from slm_curator.train.registry import load_generator, log_model, save_model_dir

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    f"Once upon a time a little {w} found a {v} in the garden."
    for w in ("cat", "dog", "bird")
    for v in ("ball", "key", "hat")
]


@pytest.fixture
def model_dir(tmp_path):
    tok = train_tokenizer(TEXTS * 5, vocab_size=300, min_frequency=1, eos_token="<|endoftext|>")
    tok.save(str(tmp_path / "tokenizer.json"))
    torch.manual_seed(0)
    model = GPT(model_config("tiny-1m", vocab_size=tok.get_vocab_size(), block_size=64, n_layer=2, n_embd=64))
    eos = eos_id(load_tokenizer(str(tmp_path / "tokenizer.json")), "<|endoftext|>")
    return save_model_dir(tmp_path / "model", model, str(tmp_path / "tokenizer.json"), eos, {"shards": "x"})


def test_folder_round_trip_is_deterministic(model_dir):
    gen = load_generator(str(model_dir))
    a = gen.complete(["Once upon a time", "A little cat"], max_new_tokens=12, temperature=1.0, seed=3)
    b = load_generator(str(model_dir)).complete(["Once upon a time", "A little cat"], 12, 1.0, seed=3)
    assert a == b and all(isinstance(t, str) for t in a)
    greedy = gen.complete(["Once upon a time"], max_new_tokens=8, temperature=0.0)
    assert greedy == gen.complete(["Once upon a time"], max_new_tokens=8, temperature=0.0, seed=99)
    assert gen.meta["shards"] == "x"


def test_registered_model_loads_by_uri_and_serves_as_pyfunc(model_dir, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp):
        uri = log_model(model_dir, "tiny-test")
    assert uri == "models:/tiny-test/1"
    expected = load_generator(str(model_dir)).complete(["Once upon a time"], 10, 0.9, top_k=20, seed=1)
    assert load_generator(uri).complete(["Once upon a time"], 10, 0.9, top_k=20, seed=1) == expected
    pyfunc = mlflow.pyfunc.load_model(uri)
    import pandas as pd

    out = pyfunc.predict(
        pd.DataFrame({"prompt": ["Once upon a time"]}),
        params={"max_new_tokens": 10, "temperature": 0.9, "top_k": 20, "seed": 1},
    )
    assert list(out["completion"]) == expected

    # The CLI reads the same registry through the config's tracking URI.
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "jobs" / "generate.py"),
            "--model",
            uri,
            "--prompt",
            "Once upon a time",
            "--max-new-tokens",
            "10",
            "--temperature",
            "0.9",
            "--top-k",
            "20",
            "--seed",
            "1",
            "--quiet",
            "--set",
            f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    assert json.loads(proc.stdout.strip().splitlines()[-1])["completion"] == expected[0]


def test_tokenizer_loads_from_a_file_a_folder_and_an_mlflow_run(tmp_path):
    import mlflow

    from slm_curator.export.tokenizer import TokenizerError, tokenizer_sha

    tok = train_tokenizer(TEXTS * 5, vocab_size=300, min_frequency=1, eos_token="<|endoftext|>")
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(tmp_path / "tok" / "tokenizer.json"), "tokenizer")
    for where in (
        str(tmp_path / "tok" / "tokenizer.json"),
        str(tmp_path / "tok"),
        f"runs:/{run.info.run_id}/tokenizer",
    ):
        assert tokenizer_sha(load_tokenizer(where)) == tokenizer_sha(tok)
    with pytest.raises(TokenizerError, match="export.tokenizer.path"):
        load_tokenizer(str(tmp_path / "missing"))
    with pytest.raises(TokenizerError, match="eos_token"):
        eos_id(tok, "</s>")
