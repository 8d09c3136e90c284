"""The MLflow pyfunc model of a trained GPT, logged as code (MLflow's models-from-code): no pickling.

A DataFrame with a `prompt` column in, a `completion` column out; decoding settings are params.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class GPTTextModel(PythonModel):
    def load_context(self, context):
        from slm_curator.train.registry import load_generator

        self.generator = load_generator(context.artifacts["model_dir"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        params = params or {}
        texts = self.generator.complete(
            [str(p) for p in model_input["prompt"]],
            int(params.get("max_new_tokens", 64)),
            float(params.get("temperature", 0.8)),
            int(params.get("top_k", 0)),
            float(params.get("top_p", 0.95)),
            int(params.get("seed", 0)),
        )
        return pd.DataFrame({"completion": texts})


mlflow.models.set_model(GPTTextModel())
