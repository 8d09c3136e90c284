"""The ablation job: the same small model trained on each curated table, compared on held-out text.

Every arm gets the same model preset, the same tokenizer (trained on a sample of the baseline arm),
the same number of optimizer steps (so the same tokens: an arm with fewer tokens repeats them, and its
epochs are reported) and the same seeds. Two held-out sets are removed from every arm by document id
and by an exact hash of the text before anything is exported: clean reference passages and a seeded
sample of the baseline arm's own web documents, so a gain on one and a loss on the other both show.

Everything is reused when nothing changed: an arm's input table is rewritten only when its source,
condition or the held-out sets change; its export is the export stage's (same fingerprint, nothing
rewritten); its runs resume through the trainer's checkpoints, and their evaluations are cached next to
them. A changed arm therefore reruns only itself.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from slm_curator import delta
from slm_curator.ablation.bits_per_byte import held_out_loss
from slm_curator.ablation.passages import all_passages
from slm_curator.ablation.stats import ArmStat, summarise
from slm_curator.config import AblationArm, ConfigError, PipelineConfig
from slm_curator.fingerprint import fingerprint
from slm_curator.stage import Input
from slm_curator.tracking import Tracker

log = logging.getLogger("slm_curator")

ARM_TABLE_PREFIX = "ablation_arm_"
SHARDS_TABLE = "ablation_shards"
EVAL_FILE = "ablation_eval.json"
METRICS = ("clean_bpb", "web_bpb", "reference_loglik", "judge_overall")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class HeldOutSet:
    name: str
    texts: list[str]
    doc_ids: list[str] = field(default_factory=list)


@dataclass
class ArmData:
    arm: AblationArm
    source: str  # table@version
    table: str  # the arm's own table
    version: int
    shards_folder: Path
    manifest: dict
    documents: int
    train_tokens: int  # unique tokens the arm has (train + anneal)


def check_ablation(cfg: PipelineConfig) -> None:
    a = cfg.ablation
    names = [arm.name for arm in a.arms]
    for i, arm in enumerate(a.arms):
        if not _NAME.match(arm.name):
            raise ConfigError(f"ablation.arms[{i}].name: {arm.name!r} must be snake_case (a-z, 0-9, _)")
        if not 0 < arm.top_fraction <= 1:
            raise ConfigError(f"ablation.arms[{i}].top_fraction: must be in (0, 1], got {arm.top_fraction}")
        if not 0 <= arm.anneal_fraction < 1:
            raise ConfigError(
                f"ablation.arms[{i}].anneal_fraction: must be in [0, 1), got {arm.anneal_fraction}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"ablation.arms: names must be unique, got {names}")
    if a.baseline_arm not in names:
        raise ConfigError(
            f"ablation.baseline_arm: {a.baseline_arm!r} is not an arm; allowed values: {', '.join(names)}"
        )
    if not a.seeds or len(set(a.seeds)) != len(a.seeds):
        raise ConfigError(f"ablation.seeds: needs distinct seeds, got {a.seeds}")
    from slm_curator.train.model import PRESETS

    if a.preset not in PRESETS:
        raise ConfigError(f"ablation.preset: {a.preset!r} is unknown; allowed values: {', '.join(PRESETS)}")
    if a.steps < 1:
        raise ConfigError(f"ablation.steps: must be a positive integer, got {a.steps}")
    if not 0 <= a.warmup_steps < a.steps:
        raise ConfigError(
            f"ablation.warmup_steps: must be in [0, ablation.steps) (0: train.warmup_steps), got {a.warmup_steps}"
        )
    if not a.clean_inputs:
        raise ConfigError(
            "ablation.clean_inputs: empty; give files or folders of clean reference text to evaluate on "
            "(e.g. --set 'ablation.clean_inputs=[\"../shared/data/prose\"]')"
        )
    if not 0 < a.web_fraction < 1:
        raise ConfigError(f"ablation.web_fraction: must be in (0, 1), got {a.web_fraction}")


# ----------------------------------------------------------------------------------------------
# Held-out sets
# ----------------------------------------------------------------------------------------------


def _files(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(str(f) for f in path.rglob("*") if f.is_file())
        elif path.is_file():
            out.append(str(path))
        else:
            raise FileNotFoundError(f"ablation.clean_inputs: {p} does not exist")
    return out


def clean_set(cfg: PipelineConfig) -> HeldOutSet:
    """Passages of the clean files, a seeded choice up to clean_max_bytes (the same on every run)."""
    from slm_curator.ingest.readers import ReaderOptions, parse_file

    a = cfg.ablation
    texts = [
        row.text
        for f in _files(a.clean_inputs)
        for row in parse_file(f, ReaderOptions(max_doc_bytes=1 << 30))
        if row.reason is None and row.text
    ]
    chosen, used = [], 0
    for p in sorted(set(all_passages(texts, a.clean_passage_chars)), key=lambda t: fingerprint([a.seed, t])):
        size = len(p.encode("utf-8"))
        if used + size > a.clean_max_bytes:
            continue  # a passage that does not fit; smaller ones may
        chosen.append(p)
        used += size
    if not chosen:
        raise FileNotFoundError(f"ablation.clean_inputs: no readable text in {a.clean_inputs}")
    return HeldOutSet("clean", chosen)


def web_set(spark, cfg: PipelineConfig, baseline: Input, text_column: str) -> HeldOutSet:
    """A seeded sample of the baseline arm's documents (web_fraction, at most web_max_docs)."""
    from pyspark.sql import functions as F

    from slm_curator.export.select import hash_uniform

    a = cfg.ablation
    u = hash_uniform(a.seed, F.col("doc_id"))
    rows = (
        baseline.read(spark)
        .where(F.col(text_column).isNotNull() & (F.length(F.trim(F.col(text_column))) > 0))
        .select("doc_id", F.col(text_column).alias("text"), u.alias("u"))
        .where(F.col("u") < a.web_fraction)
        .orderBy("u", "doc_id")
        .limit(a.web_max_docs)
        .collect()
    )
    if not rows:
        raise ConfigError(
            f"ablation.web_fraction: {a.web_fraction} of {baseline.ref.name} selects no documents; raise it"
        )
    return HeldOutSet("web", [r["text"] for r in rows], [r["doc_id"] for r in rows])


def _text_hash(column):
    from pyspark.sql import functions as F

    return F.sha2(F.trim(column), 256)


def excluded(spark, held: list[HeldOutSet], baseline: Input, text_column: str):
    """(doc ids, text hashes) no arm may train on: the held-out documents and any with the same text."""
    from pyspark.sql import functions as F

    texts = [t for h in held for t in h.texts]
    hashes = spark.createDataFrame([(t,) for t in texts], "text string").select(
        _text_hash(F.col("text")).alias("h")
    )
    hashes = [r["h"] for r in hashes.distinct().collect()]
    same_text = (
        baseline.read(spark).where(_text_hash(F.col(text_column)).isin(hashes)).select("doc_id").collect()
    )
    ids = sorted({i for h in held for i in h.doc_ids} | {r["doc_id"] for r in same_text})
    return ids, sorted(hashes)


# ----------------------------------------------------------------------------------------------
# Arms: their tables, one tokenizer, their exports
# ----------------------------------------------------------------------------------------------


def resolve_arm_input(spark, cfg: PipelineConfig, arm: AblationArm) -> Input:
    ref = delta.table_ref(cfg.storage, arm.table)
    version = delta.current_version(spark, ref)
    if version is None:
        raise FileNotFoundError(
            f"ablation.arms[{arm.name}].table: no table {ref}; run the pipeline stages that write it first "
            "(scripts/run.sh --stages ingest,filter,dedup,score ...)"
        )
    return Input(ref, version, arm.where)


def arm_table(spark, cfg: PipelineConfig, arm: AblationArm, inp: Input, ids, hashes) -> tuple[str, int]:
    """The arm's rows minus the held-out ones: doc_id, source, text (+ quality_score, cluster_id)."""
    from pyspark.sql import functions as F

    ref = delta.table_ref(cfg.storage, ARM_TABLE_PREFIX + arm.name)
    stamp = json.dumps(
        {
            "source": inp.ref.identifier,
            "version": inp.version,
            "where": arm.where,
            "text_column": arm.text_column,
            "top_fraction": arm.top_fraction,
            "excluded": fingerprint([ids, hashes]),
        },
        sort_keys=True,
    )
    from slm_curator.stage import read_stamp

    if (read_stamp(spark, ref) or {}) == json.loads(stamp):
        return ref.name, delta.current_version(spark, ref)
    df = inp.read(spark)
    if arm.text_column not in df.columns:
        raise ConfigError(
            f"ablation.arms[{arm.name}].text_column: {arm.text_column!r} is not a column of {inp.ref.name}; "
            f"allowed values: {', '.join(df.columns)}"
        )
    cols = [F.col("doc_id"), F.col("source"), F.col(arm.text_column).alias("text")]
    cols += [F.col(c) for c in ("quality_score", "cluster_id") if c in df.columns]
    df = (
        df.select(*cols)
        .where(F.col("text").isNotNull() & (F.length(F.trim(F.col("text"))) > 0))
        .where(~F.col("doc_id").isin(ids) & ~_text_hash(F.col("text")).isin(hashes))
    )
    if arm.top_fraction < 1:
        if "quality_score" not in df.columns:
            raise ConfigError(
                f"ablation.arms[{arm.name}].top_fraction: {inp.ref.name} has no quality_score column "
                "(use the scored table)"
            )
        cut = df.select(F.percentile("quality_score", 1 - arm.top_fraction)).first()[0]
        df = df.where(F.col("quality_score") >= F.lit(cut))
    written = delta.write(df, ref, "overwrite", user_metadata=stamp)
    return ref.name, written.version


def shared_tokenizer(spark, cfg: PipelineConfig, table: str, version: int) -> str:
    """One BPE for every arm, trained on a seeded sample of the baseline arm's rows; reused when present."""
    from pyspark.sql import functions as F

    from slm_curator.export.select import hash_uniform
    from slm_curator.export.tokenizer import train_tokenizer

    t = cfg.export.tokenizer
    if t.path:
        return t.path
    ref = delta.table_ref(cfg.storage, table)
    fp = fingerprint([ref.identifier, version, dataclasses.asdict(t), cfg.ablation.seed], 12)
    path = Path(cfg.storage.root) / "ablation" / "tokenizers" / f"{fp}.json"
    if path.is_file():
        return str(path)
    texts = [
        r["text"]
        for r in delta.read(spark, ref, version)
        .select("text", hash_uniform(cfg.ablation.seed + 1, F.col("doc_id")).alias("u"))
        .orderBy("u")
        .limit(t.sample_documents)
        .collect()
    ]
    log.info("ablation: training the shared tokenizer on %d documents of %s", len(texts), table)
    tok = train_tokenizer(texts, t.vocab_size, t.min_frequency, t.eos_token)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tok.save(str(tmp))
    tmp.replace(path)
    return str(path)


def export_arm(spark, cfg: PipelineConfig, arm: AblationArm, table: str, version: int, tok_path: str, run_id):
    """The export stage on the arm's table: no validation split (the held-out sets are the evaluation)."""
    from slm_curator.export.stage import run_export

    e = cfg.export
    arm_cfg = dataclasses.replace(
        cfg,
        export=dataclasses.replace(
            e,
            input_table=table,
            where="",
            text_column="text",
            score_column="quality_score",
            cluster_column="cluster_id",
            min_score=None,
            temperature=arm.temperature,
            token_budget=arm.token_budget,
            mixture={},
            anneal_fraction=arm.anneal_fraction,
            val_fraction=0.0,
            tokenizer=dataclasses.replace(e.tokenizer, path=tok_path),
            output_dir=str(Path(cfg.storage.root) / "ablation" / "shards"),
            shards_table=SHARDS_TABLE,
        ),
    )
    ref = delta.table_ref(cfg.storage, table)
    return run_export(spark, arm_cfg, run_id, Input(ref, version, ""))


def _tokens(manifest: dict, split: str) -> int:
    return int(manifest.get("tokens", {}).get(split, 0) or 0)


# ----------------------------------------------------------------------------------------------
# One run: train (or reuse), evaluate (or reuse)
# ----------------------------------------------------------------------------------------------


def run_train_config(cfg: PipelineConfig, seed: int, folder: Path):
    a = cfg.ablation
    return dataclasses.replace(
        cfg.train,
        preset=a.preset,
        max_steps=a.steps,
        warmup_steps=a.warmup_steps or cfg.train.warmup_steps,
        seed=seed,
        shards=str(folder),
        register_as="",
        checkpoint_dir="",
        checkpoint_every=min(cfg.train.checkpoint_every, a.steps),
        eval_every=a.steps,
        launcher="auto",
        max_seconds=0.0,
    )


def eval_fingerprint(cfg: PipelineConfig, held: list[HeldOutSet], reference: str) -> str:
    a, e = cfg.ablation, cfg.evaluate
    return fingerprint(
        [
            [h.texts for h in held],
            a.generation_prompts,
            a.prompt_words,
            a.max_new_tokens,
            e.temperature,
            e.top_k,
            e.top_p,
            e.seed,
            reference,
        ],
        12,
    )


def generation_prompts(cfg: PipelineConfig, clean: HeldOutSet):
    from slm_curator.evaluate.prompts import Prompt, split_story

    out = []
    for i, text in enumerate(clean.texts):
        cut = split_story(" ".join(text.split()), cfg.ablation.prompt_words)
        if cut:
            out.append(Prompt(f"clean-{i}", cut[0], cut[1][:600]))
        if len(out) == cfg.ablation.generation_prompts:
            break
    return out


def evaluate_run(model, tokenizer, eos: int, context: int, held: list[HeldOutSet], prompts, cfg, scorer):
    from slm_curator.train.registry import TextGenerator

    out: dict = {}
    for h in held:
        ids = [enc.ids for enc in tokenizer.encode_batch(h.texts)]
        loss = held_out_loss(model, ids, h.texts, eos, context)
        out[f"{h.name}_bpb"] = loss.bits_per_byte
        out[f"{h.name}_nats_per_token"] = loss.nats_per_token
        out[f"{h.name}_tokens"] = loss.tokens
        out[f"{h.name}_bytes"] = loss.bytes
    e = cfg.evaluate
    gen = TextGenerator(model, tokenizer, eos, {})
    completions = gen.complete(
        [p.beginning for p in prompts], cfg.ablation.max_new_tokens, e.temperature, e.top_k, e.top_p, e.seed
    )
    out["generations"] = [
        {"prompt_id": p.prompt_id, "prompt": p.beginning, "completion": c}
        for p, c in zip(prompts, completions, strict=True)
    ]
    if scorer is not None:
        scores = [scorer(p.beginning, c) for p, c in zip(prompts, completions, strict=True)]
        usable = [s for s in scores if s is not None]
        out["reference_loglik"] = sum(usable) / len(usable) if usable else None
    return out


@dataclass
class RunOutcome:
    row: dict
    curve: dict[int, float]


def run_one(
    cfg: PipelineConfig, data: ArmData, seed: int, held, prompts, scorer, ref_name, tracker
) -> RunOutcome:
    from tokenizers import Tokenizer

    from slm_curator.export.shard_format import MANIFEST_FILE
    from slm_curator.export.tokenizer import TOKENIZER_FILE
    from slm_curator.train.job import checkpoint_dir, split_paths
    from slm_curator.train.trainer import train

    tcfg = run_train_config(cfg, seed, data.shards_folder)
    ckpt = checkpoint_dir(dataclasses.replace(cfg, train=tcfg), data.manifest)
    ckpt.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data.shards_folder / data.manifest["tokenizer"], ckpt / TOKENIZER_FILE)
    (ckpt / MANIFEST_FILE).write_text(json.dumps(data.manifest, indent=1, sort_keys=True))
    started = time.time()

    def on_log(step, metrics):
        if step % max(1, cfg.ablation.steps // 10) == 0 or step == cfg.ablation.steps:
            log.info(
                "ablation %s seed %d: step %d/%d loss %.4f",
                data.arm.name,
                seed,
                step,
                tcfg.max_steps,
                metrics["loss"],
            )

    result = train(tcfg, split_paths(data.shards_folder, data.manifest), ckpt, on_log=on_log)
    train_seconds = time.time() - started
    eval_fp = eval_fingerprint(cfg, held, ref_name)
    cache = ckpt / EVAL_FILE
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    started = time.time()
    if cached.get("fingerprint") == eval_fp and cached.get("step") == result.step:
        evaluation = cached["evaluation"]
    else:
        tokenizer = Tokenizer.from_file(str(ckpt / TOKENIZER_FILE))
        evaluation = evaluate_run(
            result.model,
            tokenizer,
            data.manifest["eos_id"],
            result.model_config.block_size,
            held,
            prompts,
            cfg,
            scorer,
        )
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"fingerprint": eval_fp, "step": result.step, "evaluation": evaluation}, indent=1)
        )
        tmp.replace(cache)
    eval_seconds = time.time() - started
    unique = max(1, data.train_tokens)
    row = {
        "arm": data.arm.name,
        "seed": seed,
        "source": data.source,
        "arm_table": f"{data.table}@v{data.version}",
        "shards_fingerprint": data.manifest["fingerprint"],
        "checkpoint_dir": str(ckpt),
        "documents": data.documents,
        "unique_tokens": data.train_tokens,
        "tokens_seen": int(result.tokens_seen),
        "epochs": result.tokens_seen / unique,
        "steps": int(result.step),
        "num_params": int(result.num_params),
        "final_train_loss": float(sum(result.train_losses[-10:]) / len(result.train_losses[-10:])),
        "clean_bpb": evaluation["clean_bpb"],
        "web_bpb": evaluation["web_bpb"],
        "reference_loglik": evaluation.get("reference_loglik"),
        "judge_overall": evaluation.get("judge_overall"),
        "resumed_from": result.resumed_from,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "eval_fingerprint": eval_fp,
        "generations": json.dumps(evaluation["generations"], ensure_ascii=False),
    }
    curve = {i + 1: v for i, v in enumerate(result.train_losses)}
    return RunOutcome(row, curve)


# ----------------------------------------------------------------------------------------------
# The whole ablation
# ----------------------------------------------------------------------------------------------


@dataclass
class AblationResult:
    rows: list[dict]
    stats: dict[str, list[ArmStat]]
    arms: list[ArmData]
    table_version: int | None
    new_rows: int
    held: dict[str, dict]
    notes: list[str]
    figures: list[str]
    curves: dict[str, dict[int, dict[int, float]]]


def _reference_scorer(cfg: PipelineConfig):
    """The local GGUF's mean token log-likelihood of a continuation, when the judge extra is installed."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return (
            None,
            "",
            "reference-model likelihood skipped: llama-cpp-python (the judge extra) is not installed",
        )
    from slm_curator.evaluate.local_judge import ReferenceScorer, gguf_path

    j = cfg.evaluate.judge
    path = gguf_path(j.local_model_path)
    scorer = ReferenceScorer(path, j.local_ctx, j.local_threads)
    return scorer.loglik, Path(path).name, ""


def _judge_grades(cfg: PipelineConfig, rows: list[dict], prompts, tracker) -> list[str]:
    """Rubric grades of every run's generations and the judge's sanity check, when a real endpoint is set."""
    from contextlib import ExitStack

    import pandas as pd

    from slm_curator.evaluate.stage import Judging, open_judge, sanity_check

    notes: list[str] = []
    with ExitStack() as stack:
        judge = open_judge(stack, cfg)
        judging = Judging(judge.client, judge.name, tracker.active_run_id() or "")
        sanity, warnings = sanity_check(judging, judge, prompts, cfg)
        notes += warnings
        if "judge" in sanity:
            notes.append(
                f"judge sanity check: prefers the real continuation in {sanity['judge']['accuracy']:.0%}"
            )
        gens = [
            {
                "model": f"{r['arm']}/seed{r['seed']}",
                "prompt_id": g["prompt_id"],
                "prompt": g["prompt"],
                "completion": g["completion"],
            }
            for r in rows
            for g in json.loads(r["generations"])
        ]
        scores = judging.rubric(pd.DataFrame(gens))
    if len(scores):
        criteria = [
            c
            for c in scores.columns
            if c not in ("model", "prompt_id", "_parsed") and not c.endswith("_weighted")
        ]
        scores["overall"] = scores[criteria].mean(axis=1)
        by_model = scores.groupby("model")["overall"].mean().to_dict()
        for r in rows:
            r["judge_overall"] = by_model.get(f"{r['arm']}/seed{r['seed']}")
    return notes


def run_ablation(spark, cfg: PipelineConfig, tracker: Tracker) -> AblationResult:
    check_ablation(cfg)
    a = cfg.ablation
    arms = {arm.name: arm for arm in a.arms}
    inputs = {name: resolve_arm_input(spark, cfg, arm) for name, arm in arms.items()}
    base_arm, base_in = arms[a.baseline_arm], inputs[a.baseline_arm]
    held = [clean_set(cfg), web_set(spark, cfg, base_in, base_arm.text_column)]
    ids, hashes = excluded(spark, held, base_in, base_arm.text_column)
    log.info(
        "ablation: held out %d clean passages and %d web documents; %d documents excluded from every arm",
        len(held[0].texts),
        len(held[1].texts),
        len(ids),
    )
    tables = {name: arm_table(spark, cfg, arm, inputs[name], ids, hashes) for name, arm in arms.items()}
    tok_path = shared_tokenizer(spark, cfg, *tables[a.baseline_arm])
    data: list[ArmData] = []
    for name, arm in arms.items():
        table, version = tables[name]
        exported = export_arm(spark, cfg, arm, table, version, tok_path, tracker.active_run_id())
        manifest = json.loads((Path(exported.folder) / "manifest.json").read_text())
        inp = inputs[name]
        data.append(
            ArmData(
                arm,
                f"{inp.ref.name}@v{inp.version}",
                table,
                version,
                Path(exported.folder),
                manifest,
                int(sum(manifest.get("documents", {}).values())),
                _tokens(manifest, "train") + _tokens(manifest, "anneal"),
            )
        )
        log.info("ablation: arm %s: %s documents, %s tokens", name, data[-1].documents, data[-1].train_tokens)
    scorer, ref_name, note = _reference_scorer(cfg)
    notes = [note] if note else []
    prompts = generation_prompts(cfg, held[0])
    rows, curves = [], {}
    for d in data:
        for seed in a.seeds:
            with tracker.stage_run(f"{d.arm.name} seed {seed}"):
                tracker.set_tags({"ablation.arm": d.arm.name, "ablation.seed": str(seed)})
                tracker.log_table(delta.table_ref(cfg.storage, d.table), d.version, "input")
                outcome = run_one(cfg, d, seed, held, prompts, scorer, ref_name, tracker)
                tracker.log_curve("loss", outcome.curve)
                tracker.log_metrics(
                    {
                        k: v
                        for k, v in outcome.row.items()
                        if k in (*METRICS, "epochs", "final_train_loss") and v is not None
                    }
                )
            rows.append(outcome.row)
            curves.setdefault(d.arm.name, {})[seed] = outcome.curve
            log.info(
                "ablation %s seed %d: clean %.4f bpb, web %.4f bpb (%.1f epochs)",
                d.arm.name,
                seed,
                outcome.row["clean_bpb"],
                outcome.row["web_bpb"],
                outcome.row["epochs"],
            )
    if cfg.evaluate.judge.base_url:
        notes += _judge_grades(cfg, rows, prompts, tracker)
    else:
        notes.append("judge grades skipped: evaluate.judge.base_url is empty (no real judge endpoint)")
    order = [arm.name for arm in a.arms]
    stats = {
        m: summarise(
            {arm: {r["seed"]: r[m] for r in rows if r["arm"] == arm and r[m] is not None} for arm in order},
            a.baseline_arm,
            m,
            order,
        )
        for m in METRICS
    }
    version, new = write_table(spark, cfg, rows)
    held_info = {
        h.name: {"documents": len(h.texts), "bytes": sum(len(t.encode()) for t in h.texts)} for h in held
    }
    result = AblationResult(rows, stats, data, version, new, held_info, notes, [], curves)
    return result


ABLATION_COLUMNS = [
    ("run_key", "string"),
    ("arm", "string"),
    ("seed", "int"),
    ("source", "string"),
    ("arm_table", "string"),
    ("shards_fingerprint", "string"),
    ("eval_fingerprint", "string"),
    ("checkpoint_dir", "string"),
    ("documents", "bigint"),
    ("unique_tokens", "bigint"),
    ("tokens_seen", "bigint"),
    ("epochs", "double"),
    ("steps", "int"),
    ("num_params", "bigint"),
    ("final_train_loss", "double"),
    ("clean_bpb", "double"),
    ("web_bpb", "double"),
    ("reference_loglik", "double"),
    ("judge_overall", "double"),
    ("generations", "string"),
]


def write_table(spark, cfg: PipelineConfig, rows: list[dict]) -> tuple[int | None, int]:
    """One row per (arm, seed, shards, trained config, evaluation): a re-run with nothing new adds nothing."""
    ref = delta.table_ref(cfg.storage, cfg.ablation.table)
    records = []
    for r in rows:
        key = fingerprint(
            [
                r["shards_fingerprint"],
                r["checkpoint_dir"].rsplit("/", 1)[-1],
                r["eval_fingerprint"],
                r["judge_overall"],
            ],
            16,
        )
        records.append(tuple([key] + [r.get(name) for name, _ in ABLATION_COLUMNS[1:]]))
    schema = ", ".join(f"{n} {t}" for n, t in ABLATION_COLUMNS)
    frame = spark.createDataFrame(records, schema)
    from pyspark.sql import functions as F

    frame = frame.withColumn("created_at", F.current_timestamp())
    before = delta.current_version(spark, ref)
    written = delta.merge(frame, ref, ["run_key"])
    new = len(records) if before is None else (written.metrics or {}).get("numTargetRowsInserted", 0)
    return written.version, int(new)


def format_report(result: AblationResult, baseline: str) -> str:
    """The side-by-side table: every arm with its interval and its difference from the baseline."""
    lines = []
    clean = {s.arm: s for s in result.stats["clean_bpb"]}
    web = {s.arm: s for s in result.stats["web_bpb"]}
    ref = {s.arm: s for s in result.stats["reference_loglik"]}
    epochs = {}
    for r in result.rows:
        epochs.setdefault(r["arm"], []).append(r["epochs"])
    header = f"{'arm':<16} {'docs':>6} {'tokens':>9} {'epochs':>6}  {'clean bpb (95% CI)':<24} {'vs ' + baseline:<24} {'web bpb (95% CI)':<24} {'vs ' + baseline:<24} ref loglik"
    lines += [header, "-" * len(header)]

    def cell(s: ArmStat | None, diff: bool = False) -> str:
        if s is None:
            return "-"
        if diff:
            if s.diff is None:
                return "-"
            mark = " *" if s.excludes_zero else ""
            return f"{s.diff:+.4f} [{s.diff_low:+.4f}, {s.diff_high:+.4f}]{mark}"
        return f"{s.mean:.4f} [{s.low:.4f}, {s.high:.4f}]"

    for d in result.arms:
        name = d.arm.name
        ep = epochs.get(name, [math.nan])
        r = ref.get(name)
        lines.append(
            f"{name:<16} {d.documents:>6} {d.train_tokens:>9} {sum(ep) / len(ep):>6.2f}  {cell(clean.get(name)):<24} "
            f"{cell(clean.get(name), True):<24} {cell(web.get(name)):<24} {cell(web.get(name), True):<24} "
            f"{f'{r.mean:.3f}' if r else '-'}"
        )
    lines.append("* the 95% interval of the difference excludes zero (paired by seed)")
    return "\n".join(lines)


def report_json(result: AblationResult, cfg: PipelineConfig) -> dict:
    return {
        "baseline_arm": cfg.ablation.baseline_arm,
        "seeds": cfg.ablation.seeds,
        "preset": cfg.ablation.preset,
        "steps": cfg.ablation.steps,
        "held_out": result.held,
        "arms": {
            d.arm.name: {
                "source": d.source,
                "documents": d.documents,
                "unique_tokens": d.train_tokens,
                **dataclasses.asdict(d.arm),
            }
            for d in result.arms
        },
        "stats": {m: [dataclasses.asdict(s) for s in stats] for m, stats in result.stats.items()},
        "runs": [{k: v for k, v in r.items() if k != "generations"} for r in result.rows],
        "notes": result.notes,
    }


def ablation(cfg: PipelineConfig, spark=None) -> AblationResult:
    """The job: one MLflow parent run, a child per arm and seed, the report and figures on the parent."""
    from slm_curator.ablation.plots import bits_per_byte_figure, curves_figure

    tracker = Tracker(cfg)
    if spark is None:
        from slm_curator.spark import get_spark

        spark = get_spark(cfg)
    with tracker.pipeline_run("ablation", tags={"env": cfg.env, "kind": "ablation"}) as run_id:
        result = run_ablation(spark, cfg, tracker)
        out = Path(cfg.storage.root) / "ablation" / "report"
        t = run_train_config(cfg, cfg.ablation.seeds[0], Path("."))
        context = (result.arms[0].manifest["seq_len"] - 1) if result.arms else 0
        result.figures = [
            str(
                bits_per_byte_figure(
                    result.stats,
                    out / "bits_per_byte.png",
                    f"{cfg.ablation.preset}, {cfg.ablation.steps} steps",
                )
            ),
            str(
                curves_figure(
                    result.curves, t.micro_batch * t.grad_accum * context, out / "training_curves.png"
                )
            ),
        ]
        report = report_json(result, cfg)
        (out / "ablation.json").write_text(json.dumps(report, indent=1, default=str))
        (out / "ablation.txt").write_text(format_report(result, cfg.ablation.baseline_arm) + "\n")
        for f in [*result.figures, str(out / "ablation.json"), str(out / "ablation.txt")]:
            tracker.log_artifact(f, "ablation")
        for s in result.stats["clean_bpb"] + result.stats["web_bpb"]:
            tracker.log_metrics({f"{s.metric}.{s.arm}": s.mean})
            if s.diff is not None:
                tracker.log_metrics({f"{s.metric}_vs_{cfg.ablation.baseline_arm}.{s.arm}": s.diff})
        tracker.log_table(delta.table_ref(cfg.storage, cfg.ablation.table), result.table_version, "output")
        print()
        print(format_report(result, cfg.ablation.baseline_arm))
        held = ", ".join(
            f"{k}: {v['documents']} documents, {v['bytes']} bytes" for k, v in result.held.items()
        )
        print(f"held out ({held}); removed from every arm by doc_id and exact text hash")
        for note in result.notes:
            print(note)
        where = delta.table_ref(cfg.storage, cfg.ablation.table)
        print(f"{where}@v{result.table_version}: {result.new_rows} new rows; report and figures in {out}")
        print(f"MLflow: {tracker.run_link(run_id)}")
    return result
