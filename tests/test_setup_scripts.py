"""The set-up scripts refuse a bad setting before they touch anything, naming the variable and the
values it allows (the rest of bootstrap runs in every test session and in the README's commands)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bootstrap(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["bash", "scripts/bootstrap.sh", "dev"],
        cwd=ROOT,
        env={**os.environ, "SLM_VENV": str(venv), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not venv.exists(), "a refused setting must not create the venv"
    return result


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLM_INSTALLER": "conda"}, "SLM_INSTALLER=conda is not an installer; allowed values: uv, pip"),
        (
            {"SLM_SPARK_LINE": "2.4"},
            "SLM_SPARK_LINE=2.4 is not a supported Spark line; allowed values: 4.1, 3.5",
        ),
    ],
)
def test_bootstrap_names_the_bad_variable_and_the_allowed_values(tmp_path, env, message):
    result = _bootstrap(tmp_path, **env)
    assert result.returncode == 2
    assert message in result.stderr


def test_both_lines_pin_the_same_installer():
    """bootstrap installs uv from the line's constraints file: both lines must pin one version."""
    pins = {
        name: [line for line in (ROOT / name).read_text().splitlines() if line.startswith("uv==")]
        for name in ("constraints.txt", "constraints-3.5.txt")
    }
    assert pins["constraints.txt"] == pins["constraints-3.5.txt"] and len(pins["constraints.txt"]) == 1, pins


@pytest.mark.parametrize("workers", ["two", "0", "-1"])
def test_test_script_names_a_bad_worker_count_before_installing(tmp_path, workers):
    result = subprocess.run(
        ["bash", "scripts/test.sh", "--collect-only"],
        cwd=ROOT,
        env={**os.environ, "SLM_VENV": str(tmp_path / "venv"), "SLM_TEST_WORKERS": workers},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"SLM_TEST_WORKERS={workers} is not a worker count; allowed values: integers >= 1" in result.stderr
    assert not (tmp_path / "venv").exists()
