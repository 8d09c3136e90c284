"""The stage contract and the filter registry: what each declares is what the UDF, the gate and the CLI use."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from tests.conftest import ROOT

from slm_curator.config import FilterConfig, load_config
from slm_curator.filters.document import Filters, analyze
from slm_curator.filters.registry import FAMILIES
from slm_curator.filters.stage import gate_checks

FAMILY_NAMES = [f.name for f in FAMILIES]
PROSE = (
    "The river rose through the night and by morning the lower fields were under water. "
    "Farmers moved their animals to the high pasture, and the school opened its hall to families. "
) * 6


def _off(cfg: FilterConfig, name: str) -> FilterConfig:
    return dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), enabled=False)})


def _checked_columns(checks) -> set[str]:
    return {
        e["kwargs"]["column"] for e in checks.expectations if e["kwargs"]["column"].startswith("signals_")
    }


def _vocabulary(checks) -> set[str]:
    (entry,) = [e for e in checks.expectations if e.get("view") == "reasons"]
    return set(entry["kwargs"]["value_set"])


def test_every_family_is_a_config_section_with_its_own_switch():
    names = [f.name for f in dataclasses.fields(FilterConfig)]
    assert names[-len(FAMILIES) :] == FAMILY_NAMES
    for family in FAMILIES:
        assert getattr(FilterConfig(), family.name).enabled is True
        assert family.config is type(getattr(FilterConfig(), family.name))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_switching_a_family_off_removes_its_signals_and_reasons_everywhere(name):
    full, off = FilterConfig(), _off(FilterConfig(), name)
    family = next(f for f in FAMILIES if f.name == name)
    gone = {s.name for s in family.signals(getattr(full, name))}
    assert gone.isdisjoint(Filters(off).signal_names())
    assert _checked_columns(gate_checks(off)) == {f"signals_{n}" for n in Filters(off).signal_names()}
    assert set(family.reasons(getattr(full, name))).isdisjoint(_vocabulary(gate_checks(off)))
    # and analyze agrees: the family's reasons never appear, its signals are not computed
    result = analyze(PROSE + "\n{ lorem ipsum }", off)
    assert name not in result.families and gone.isdisjoint(result.signals)
    assert set(result.signals) == set(Filters(off).signal_names())


def test_a_new_ngram_size_is_a_new_signal_rule_and_gate_expectation():
    cfg = load_config("local", ["filter.gopher_repetition.top_n_grams.5=0.15"], conf_dir=ROOT / "conf")
    assert cfg.filter.gopher_repetition.top_n_grams == {"2": 0.2, "3": 0.18, "4": 0.16, "5": 0.15}  # added
    checks = gate_checks(cfg.filter)
    assert "signals_gopher_rep_top_5_gram_char_frac" in _checked_columns(checks)
    assert "gopher_rep_top_5_gram" in _vocabulary(checks)
    repeated = "one two three four five " * 40
    assert "gopher_rep_top_5_gram" in analyze(repeated, cfg.filter).reasons
    removed = load_config("local", ["filter.gopher_repetition.dup_n_grams.10=null"], conf_dir=ROOT / "conf")
    assert "10" not in removed.filter.gopher_repetition.dup_n_grams


def test_a_ngram_size_that_is_not_a_number_names_the_key():
    from slm_curator.config import ConfigError

    with pytest.raises(ConfigError, match="filter.gopher_repetition.top_n_grams.five: .* integers >= 1"):
        load_config("local", ["filter.gopher_repetition.top_n_grams.five=0.1"], conf_dir=ROOT / "conf")


def test_declared_ranges_hold_on_adversarial_text():
    """Ranges are invariants, not typical values: symbol runs, blank lines and repeats stay inside them."""
    cfg = FilterConfig()
    filters = Filters(cfg)
    texts = [
        "a a a a a a a a a a",  # overlapping top n-grams
        "\n\n\n\nx\n\n\n\n\ny\n\n\n",  # more newlines than words
        "see https://x.org/#a#b#c#d#e#f",  # hashes inside one URL token
        "...... ...... ......",  # two ellipses per token
        "- a\n• b\n- c",
        "\u3000\u200b",
    ]
    for text in texts:
        result = filters.analyze(text)
        for s in filters.signals():
            value = result.signals.get(s.name)
            if value is None or value != value:
                continue
            assert s.low is None or value >= s.low, (text, s, value)
            assert s.high is None or value <= s.high, (text, s, value)
        assert set(result.reasons) <= set(filters.reasons()), text


def _top_level_imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:  # module level only: imports inside functions are deliberate and lazy
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith(package))
    return out


def test_the_package_has_no_import_cycle_and_the_pipeline_no_cli():
    lib = ROOT / "lib"
    modules = {
        ".".join(p.relative_to(lib).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (lib / "slm_curator").rglob("*.py")
    }
    graph = {
        m: {i for i in _top_level_imports(p, "slm_curator") if i in modules and i != m}
        for m, p in modules.items()
    }
    assert "slm_curator.cli" not in graph["slm_curator.pipeline"]
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for dep in graph[module]:
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*trail, module, dep])
            if dep not in state:
                visit(dep, [*trail, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_every_job_file_is_three_statements_calling_the_cli():
    for job in sorted((ROOT / "jobs").glob("*.py")):
        body = [n for n in ast.parse(job.read_text()).body if not isinstance(n, ast.Expr)]
        assert len(body) == 3, job.name
        assert "from slm_curator.cli import main" in job.read_text()


def test_torchrun_ranks_above_zero_run_the_train_worker_without_tracking(monkeypatch):
    from slm_curator import cli
    from slm_curator.pipeline import find_stage

    calls = []
    train = find_stage("train")
    monkeypatch.setattr(cli, "find_stage", lambda name: dataclasses.replace(train, worker=calls.append))
    monkeypatch.setattr(cli, "run_pipeline", lambda *a, **k: calls.append("pipeline"))
    monkeypatch.setenv("RANK", "1")
    assert cli.main(["train", "--conf-dir", str(ROOT / "conf")]) == 0
    assert len(calls) == 1 and calls[0] != "pipeline"  # the worker got the config; no MLflow run opened
    monkeypatch.setenv("RANK", "0")
    assert cli.main(["train", "--conf-dir", str(ROOT / "conf")]) == 0
    assert calls[-1] == "pipeline"


def test_stage_flags_set_config_keys_and_work_options(monkeypatch):
    from slm_curator import cli

    seen = {}
    monkeypatch.setattr(cli, "run_pipeline", lambda cfg, **kw: seen.update(cfg=cfg, **kw))
    assert cli.main(["ingest", "--input", "a.jsonl", "--input", "b/", "--conf-dir", str(ROOT / "conf")]) == 0
    assert seen["cfg"].ingest.input == ["a.jsonl", "b/"] and seen["stages"] == ["ingest"]
    assert cli.main(["filter", "--dry-run", "--conf-dir", str(ROOT / "conf")]) == 0
    assert seen["options"] == {"filter": {"dry_run": True}}
    assert cli.main(["pipeline", "--stages", "ingest,nope", "--conf-dir", str(ROOT / "conf")]) == 2
