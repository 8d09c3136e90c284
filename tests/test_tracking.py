"""Where MLflow writes: config, then MLFLOW_TRACKING_URI, then a store inside the data directory."""

from __future__ import annotations

import dataclasses

import pytest
from tests.conftest import ROOT

from slm_curator.config import ConfigError, load_config
from slm_curator.tracking import resolve_tracking_uri


def _cfg(*overrides):
    return load_config("local", list(overrides), conf_dir=ROOT / "conf")


def test_default_is_a_sqlite_store_inside_the_data_directory(tmp_path):
    cfg = _cfg(f"storage.root={tmp_path}")
    assert resolve_tracking_uri(cfg) == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_environment_variable_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(_cfg(f"storage.root={tmp_path}")) == "http://127.0.0.1:5999"


def test_config_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(_cfg("tracking.tracking_uri=databricks")) == "databricks"


def test_remote_storage_without_a_tracking_uri_is_a_config_error():
    cfg = _cfg()
    cfg = dataclasses.replace(cfg, storage=dataclasses.replace(cfg.storage, root="s3://bucket/x"))
    with pytest.raises(ConfigError, match="tracking.tracking_uri"):
        resolve_tracking_uri(cfg)
