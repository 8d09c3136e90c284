"""The Databricks bundle: every task runs an existing job with arguments it accepts; the wheel builds."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from slm_curator import cli, pipeline

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = yaml.safe_load((ROOT / "databricks.yml").read_text())
JOB = BUNDLE["resources"]["jobs"]["slm_curator"]
TASKS = JOB["tasks"]
TARGETS = list(BUNDLE["targets"])
# Databricks Runtime (LTS) -> the Spark line it runs (maven.lines, constraints files).
RUNTIME_LINES = {"18.0": "4.1", "16.4": "3.5", "15.4": "3.5"}


def _variables(target: str) -> dict[str, str]:
    values = {k: str(v.get("default", "")) for k, v in BUNDLE["variables"].items()}
    values.update({k: str(v) for k, v in (BUNDLE["targets"][target].get("variables") or {}).items()})
    return values


def _substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        assert name in values, f"${{var.{name}}} is not a declared bundle variable"
        return values[name]

    text = re.sub(r"\$\{var\.([a-z_]+)\}", one, text)
    return text.replace("${bundle.target}", "dev")


def _main_of(job_file: Path):
    """The command a jobs/*.py file runs through slm_curator.cli.main, as a function of its arguments."""
    found = re.search(r'main\(\["(\w+)", \*sys\.argv\[1:\]\]\)', job_file.read_text())
    assert found, f"{job_file} does not call slm_curator.cli.main with a command"
    return lambda argv: cli.main([found.group(1), *argv])


def test_tasks_form_the_pipeline_in_stage_order():
    keys = [t["task_key"] for t in TASKS]
    assert len(keys) == len(set(keys))
    for i, task in enumerate(TASKS):
        deps = [d["task_key"] for d in task.get("depends_on", [])]
        assert all(d in keys[:i] for d in deps), f"{task['task_key']} depends on a later or unknown task"
        if i:
            assert deps, f"{task['task_key']} has no depends_on: it would start at once"
    stage_order = [s for s in pipeline.NAMES if s in keys]
    assert stage_order == keys, "tasks must follow the pipeline's stage order"
    clusters = {c["job_cluster_key"] for c in JOB["job_clusters"]}
    assert all(t["job_cluster_key"] in clusters for t in TASKS)
    gpu = next(c for c in JOB["job_clusters"] if c["job_cluster_key"] == "gpu")
    assert "gpu-ml" in _substitute(gpu["new_cluster"]["spark_version"], _variables("dev"))
    assert next(t for t in TASKS if t["task_key"] == "train")["job_cluster_key"] == "gpu"
    assert {"dev", "prod"} <= set(BUNDLE["targets"])
    assert {"catalog", "schema", "volume_root"} <= set(BUNDLE["variables"])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("task", TASKS, ids=[t["task_key"] for t in TASKS])
def test_task_runs_an_existing_job_that_accepts_its_arguments(task, target, monkeypatch):
    """Each task's parameters go through the job's real argument parser and config loader."""
    job_file = ROOT / task["spark_python_task"]["python_file"]
    assert job_file.is_file(), job_file
    assert any(lib.get("whl") == "./dist/*.whl" for lib in task["libraries"]), "the wheel is not attached"
    params = [_substitute(str(p), _variables(target)) for p in task["spark_python_task"]["parameters"]]
    captured = []
    monkeypatch.setattr(cli, "run_pipeline", lambda cfg, **kw: captured.append((cfg, kw)) or [])
    code = _main_of(job_file)(params)
    assert code == 0, f"{task['task_key']}: the job refused {params}"
    cfg, kwargs = captured[0]
    assert cfg.env == "databricks"
    assert kwargs["stages"] == [task["task_key"]]
    variables = _variables(target)
    assert (cfg.storage.catalog, cfg.storage.schema) == (variables["catalog"], variables["schema"])
    assert cfg.storage.root == variables["volume_root"]


@pytest.mark.parametrize("target", TARGETS)
def test_ablation_job_runs_jobs_ablation_with_arguments_it_accepts(target, monkeypatch):
    from slm_curator.ablation import job as ablation_job

    (task,) = BUNDLE["resources"]["jobs"]["slm_curator_ablation"]["tasks"]
    job_file = ROOT / task["spark_python_task"]["python_file"]
    assert job_file.name == "ablation.py" and job_file.is_file()
    assert any(lib.get("whl") == "./dist/*.whl" for lib in task["libraries"])
    variables = _variables(target)
    params = [_substitute(str(p), variables) for p in task["spark_python_task"]["parameters"]]
    captured = []
    monkeypatch.setattr(ablation_job, "ablation", lambda cfg: captured.append(cfg))
    assert _main_of(job_file)(params) == 0, f"jobs/ablation.py refused {params}"
    (cfg,) = captured
    assert cfg.env == "databricks" and cfg.storage.root == variables["volume_root"]
    assert cfg.ablation.clean_inputs == [variables["clean_reference"]]
    assert cfg.ablation.preset == variables["ablation_preset"]
    clusters = BUNDLE["resources"]["jobs"]["slm_curator_ablation"]["job_clusters"]
    assert task["job_cluster_key"] in {c["job_cluster_key"] for c in clusters}


@pytest.mark.parametrize("target", TARGETS)
def test_every_cluster_of_a_target_runs_a_supported_spark_line(target):
    """Both Spark lines have targets, and each runtime's Scala matches its line's jars."""
    from slm_curator.config import load_config

    clusters = [c for job in BUNDLE["resources"]["jobs"].values() for c in job["job_clusters"]]
    lines = set()
    for cluster in clusters:
        version = _substitute(cluster["new_cluster"]["spark_version"], _variables(target))
        runtime, scala = version.split(".x-")[0], version.rsplit("-scala", 1)[1]
        assert runtime in RUNTIME_LINES, f"{target}: {version} is not a runtime of a supported line"
        line = RUNTIME_LINES[runtime]
        lines.add(line)
        delta = load_config("databricks", [f"maven.spark_line={line}"], ROOT / "conf").maven.packages["delta"]
        assert delta.split(":")[1].endswith("_" + scala), (target, version, delta)
        assert ("gpu-ml" in version) == (cluster["job_cluster_key"] == "gpu"), version
    assert len(lines) == 1, f"{target} mixes Spark lines: {lines}"


def test_both_spark_lines_have_a_dev_and_a_prod_target():
    lines = {}
    for target, spec in BUNDLE["targets"].items():
        version = _substitute("${var.spark_version}", _variables(target))
        lines.setdefault(RUNTIME_LINES[version.split(".x-")[0]], set()).add(spec["mode"])
    assert lines == {"4.1": {"development", "production"}, "3.5": {"development", "production"}}


def test_a_misspelt_task_argument_would_fail(monkeypatch):
    """The check above can fail: an unknown key or flag is refused by the same code path."""
    monkeypatch.setattr(cli, "run_pipeline", lambda cfg, **kw: [])
    assert cli.main(["filter", "--env", "databricks", "--set", "storage.catalogue=main"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["filter", "--env", "databricks", "--catalog", "main"])


def test_wheel_builds_from_setup_cfg_with_the_package_and_its_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(tmp_path.glob("slm_curator-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for module in ("pipeline.py", "checks/gate.py", "checks/stage.py", "filters/stage.py", "export/stage.py"):
        assert f"slm_curator/{module}" in names
    assert "slm_curator/filters/badwords/en.txt" in names
    for model in ("default_model", "default_model_words"):  # the score stage's defaults (torch, Spark NLP)
        assert {
            f"slm_curator/quality/{model}/quality_model.json",
            f"slm_curator/quality/{model}/TRAINING.md",
        } <= names
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheels[0]).read(meta).decode()
    assert "Requires-Dist: great-expectations" in text
