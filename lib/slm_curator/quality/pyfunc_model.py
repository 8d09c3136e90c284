"""The MLflow pyfunc model of a quality scorer, logged as code (models-from-code): no pickling.

A DataFrame with a `text` column in, `quality_score` (0-5) out.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class QualityScoreModel(PythonModel):
    def load_context(self, context):
        from slm_curator.quality.model import load_model

        self.model = load_model(context.artifacts["model_dir"])
        self.encoder = self.model.load_encoder()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        texts = [str(t) if t is not None else "" for t in model_input["text"]]
        return pd.DataFrame({"quality_score": self.model.score(self.encoder, texts)})


mlflow.models.set_model(QualityScoreModel())
