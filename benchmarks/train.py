"""Training throughput: tokens/s, MFU and data-wait fraction of `train.trainer.train`, against a bare loop.

Ours: the real `train()` (prefetching shard loader, LR schedule, grad clipping, AdamW, loss sync at each
log) on synthetic shards of uniformly random tokens, which cost the loader and the model exactly what
real tokens cost. Each run is `--warmup` + `--steps` optimizer steps with the trainer's `log_every` set
to `--interval`: each log closes a timed interval (the trainer syncs the device there), and the
intervals inside the warmup (allocator warm-up, oneDNN/cuBLAS autotuning, torch.compile) are dropped.
Eval is off; the final checkpoint is written after the last timed interval (the trainer excludes
checkpoint time). Trainer and bare loop (below) alternate `--repeats` times per config so both see
the same phases of any load from other processes, and tokens/s is taken from the fastest timed
interval, as timeit advises: on a shared machine the slower intervals measure the neighbours. The
median and mean of all intervals are in the JSON too.

Model FLOPs per token are PaLM's count as nanoGPT's estimate_mfu uses it (`GPT.flops_per_token`):
6 * N (non-embedding parameters plus the lm_head matmul) + 12 * n_layer * n_embd * context for the
attention scores and values. Achieved model FLOP/s = FLOPs per token * tokens/s. MFU is reported
against two peaks:

- datasheet: the dense bf16 tensor-core peak of the GPU (`trainer.peak_flops`, e.g. 989.5 TFLOP/s for
  an H100 SXM); none exists for a CPU, so this column is empty there. For reference, llm.c reaches
  ~40% on this GPT-2-small shape in bf16 on an H100, nanoGPT ~30% on an A100.
- measured matmul peak (baseline, same run): the best FLOP/s of a square `torch.mm` in the training
  dtype (fp32 on CPU, bf16 on CUDA) over a few sizes and reps, with the same thread count, probed at
  the start, before every trainer and bare-loop run and at the end (the best probe counts, for the
  same reason as the fastest interval): what this machine's GEMM actually delivers, so CPU MFU has a
  denominator measured rather than guessed.

Second baseline, "bare loop" (same run, same model config, seed, micro-batch, dtype, compile setting):
forward, backward, grad clipping, AdamW step and zero_grad on one fixed batch already on the device,
with no data loader, LR schedule, loss logging or checkpointing, timed in the same intervals (a loss
read and torch.cuda.synchronize closing each). Trainer tokens/s / bare-loop tokens/s is the trainer's
overhead (1.0 = none). The data-wait fraction is the trainer's own: the share of all timed step time
the loop spent blocked on the prefetch queue. On CPU each interval also records its CPU share, the
process's CPU seconds / (wall seconds * threads): near 1 means the run had the cores to itself, well
below 1 that other processes took them, which makes that interval's numbers a measure of the machine's
load rather than of the code.

    .venv/bin/python benchmarks/train.py                   # CPU: writes benchmarks/results/train.json
    .venv/bin/python benchmarks/train.py --device cuda     # GPU: writes benchmarks/results/train_cuda.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# name -> preset, context (model input length; shard rows are context + 1 tokens), micro-batch, compile.
CONFIGS: dict[str, dict] = {
    "tiny-1m": dict(preset="tiny-1m", context=256, micro_batch=16, compile=False),
    "ts-8m": dict(preset="ts-8m", context=256, micro_batch=8, compile=False),
    "ts-33m": dict(preset="ts-33m", context=256, micro_batch=4, compile=False),
    "gpt2-small": dict(preset="gpt2-small", context=1024, micro_batch=16, compile=False),
    "gpt2-small-compile": dict(preset="gpt2-small", context=1024, micro_batch=16, compile=True),
    "smollm-135m-compile": dict(preset="smollm-135m", context=2048, micro_batch=8, compile=True),
}
DEFAULTS = {
    "cpu": dict(configs="tiny-1m,ts-8m", warmup=1, steps=4, interval=1, repeats=2),
    "cuda": dict(configs="gpt2-small,gpt2-small-compile", warmup=10, steps=50, interval=10, repeats=1),
}
# Square matmul sizes for the measured peak, per device type.
MATMUL_SIZES = {"cpu": (1024, 2048), "cuda": (4096, 8192)}
# A CPU interval whose process got at least this share of threads * wall time counts as quiet.
QUIET_SHARE = 0.9


def resolve_dtype(name: str, device_type: str):
    """The trainer's rule (trainer._autocast): bf16 on CUDA, fp32 on CPU, unless asked otherwise."""
    import torch

    if name == "auto":
        name = "bfloat16" if device_type == "cuda" else "float32"
    return torch.bfloat16 if name == "bfloat16" else torch.float32


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, dtype, sizes: tuple[int, ...], reps: int) -> dict:
    """Best FLOP/s of an (n x n) @ (n x n) torch.mm over sizes and reps: this machine's GEMM peak."""
    import torch

    by_n = {}
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):  # warm-up: thread pool, cuBLAS heuristics
            torch.mm(a, b)
        sync(device)
        best = math.inf
        for _ in range(reps):
            start = time.perf_counter()
            torch.mm(a, b)
            sync(device)
            best = min(best, time.perf_counter() - start)
        by_n[n] = 2.0 * n**3 / best
        del a, b
    n = max(by_n, key=by_n.get)
    return {
        "n": n,
        "flops_per_s": round(by_n[n]),
        "flops_per_s_by_n": {str(k): round(v) for k, v in by_n.items()},
    }


def write_shards(folder: Path, vocab_size: int, context: int, rows: int, seed: int) -> list[str]:
    """Uniformly random tokens: throughput does not depend on their values."""
    import numpy as np

    from slm_curator.export.shard_format import write_shard

    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab_size, size=(rows, context + 1), dtype=np.int64)
    path = folder / "train_000.bin"
    write_shard(path, tokens, vocab_size=vocab_size, eos_id=0)
    return [str(path)]


def make_train_config(spec: dict, args, device_type: str):
    from slm_curator.config import TrainConfig

    return TrainConfig(
        preset=spec["preset"],
        micro_batch=spec["micro_batch"],
        grad_accum=1,
        max_steps=args.warmup + args.steps,
        warmup_steps=max(1, args.warmup),
        eval_every=0,
        checkpoint_every=0,
        resume=False,
        device=device_type,
        dtype=args.dtype,
        compile=spec["compile"],
        log_every=args.interval,  # every log closes one timed interval
    )


def summarize(
    spans: list[float], cpu: list[float], interval: int, tokens_per_step: int, threads: int | None
) -> dict:
    """Interval seconds -> tokens/s of the fastest interval (headline), the median and the mean.

    With `threads` (CPU runs), also each interval's CPU share and the median over the quiet intervals
    (share >= QUIET_SHARE); on a GPU the CPU share says nothing, so threads is None there.
    """
    tokens = interval * tokens_per_step
    fastest = min(range(len(spans)), key=spans.__getitem__)
    share = [c / (w * threads) for w, c in zip(spans, cpu, strict=True)] if threads else None
    quiet = [w for w, x in zip(spans, share, strict=True) if x >= QUIET_SHARE] if share else []
    return {
        "cpu_share_fastest": share[fastest] if share else None,
        "cpu_share_by_interval": [round(x, 3) for x in share] if share else None,
        "measured_steps": interval * len(spans),
        "tokens_per_s": tokens / min(spans),
        "tokens_per_s_median": tokens / statistics.median(spans),
        "quiet_intervals": len(quiet) if share else None,
        "tokens_per_s_median_quiet": tokens / statistics.median(quiet) if quiet else None,
        "tokens_per_s_mean": tokens * len(spans) / sum(spans),
        "step_ms": 1e3 * min(spans) / interval,
        "step_ms_by_interval": [round(1e3 * t / interval, 2) for t in spans],
    }


def rnd(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def timing_fields(s: dict) -> dict:
    return {
        "measured_steps": s["measured_steps"],
        "tokens_per_s": round(s["tokens_per_s"], 1),
        "tokens_per_s_median": round(s["tokens_per_s_median"], 1),
        "tokens_per_s_mean": round(s["tokens_per_s_mean"], 1),
        "step_ms": round(s["step_ms"], 2),
        "step_ms_by_interval": s["step_ms_by_interval"],
        "quiet_intervals": s["quiet_intervals"],
        "tokens_per_s_median_quiet": rnd(s["tokens_per_s_median_quiet"], 1),
        "cpu_share_fastest": rnd(s["cpu_share_fastest"], 3),
        "cpu_share_by_interval": s["cpu_share_by_interval"],
    }


def flops_fields(s: dict, flops_per_token: float, datasheet: float | None, matmul: float) -> dict:
    achieved = flops_per_token * s["tokens_per_s"]
    return {
        "model_flops_per_s": round(achieved),
        "mfu_vs_datasheet": round(achieved / datasheet, 4) if datasheet else None,
        "mfu_vs_measured_matmul": round(achieved / matmul, 4),
    }


def run_trainer(cfg, shards: list[str], checkpoint_dir: Path, context: int, warmup: int) -> dict:
    """The real train(); seconds and data wait of each log interval that starts at or after warmup."""
    from slm_curator.train.trainer import train

    logs: list[tuple[int, dict, float]] = []  # (step, metrics, process CPU seconds at the log)
    cpu_start = time.process_time()
    result = train(
        cfg,
        {"train": shards},
        checkpoint_dir,
        on_log=lambda step, m: logs.append((step, dict(m), time.process_time())),
    )
    tokens_per_step = cfg.micro_batch * cfg.grad_accum * context
    spans, cpu, waits, prev, prev_cpu = [], [], [], 0, cpu_start
    for step, metrics, cpu_now in logs:
        if prev >= warmup:
            span = (step - prev) * tokens_per_step / metrics["tokens_per_second"]
            spans.append(span)
            cpu.append(cpu_now - prev_cpu)
            waits.append(metrics["data_wait_fraction"] * span)
        prev, prev_cpu = step, cpu_now
    return {
        "spans": spans,
        "cpu": cpu,
        "waits": waits,
        "final_loss": result.train_losses[-1],
        "num_params": result.num_params,
        # What TrainResult itself reports: every step of the session, warmup included.
        "trainer_reported": {
            "tokens_per_s_all_steps": round(result.tokens_per_second, 1),
            "mfu_all_steps": result.mfu,
            "data_wait_fraction_all_steps": round(result.data_wait_fraction, 4),
            "train_seconds": round(result.train_seconds, 3),
        },
    }


def run_bare_loop(cfg, device, vocab_size: int, context: int, warmup: int, steps: int) -> dict:
    """forward + backward + clip + AdamW + zero_grad on one fixed on-device batch; seconds per interval."""
    import torch

    from slm_curator.train.model import GPT
    from slm_curator.train.trainer import build_model_config

    torch.manual_seed(cfg.seed)
    raw = GPT(build_model_config(cfg, vocab_size, context + 1)).to(device)
    optimizer = raw.optimizer(cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), device.type)
    model = torch.compile(raw) if cfg.compile else raw
    model.train()
    bf16 = resolve_dtype(cfg.dtype, device.type) == torch.bfloat16
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    if device.type == "cuda":  # as the trainer sets them
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    params = [p for p in raw.parameters() if p.requires_grad]
    x = torch.randint(0, vocab_size, (cfg.micro_batch, context), device=device)
    y = torch.randint(0, vocab_size, (cfg.micro_batch, context), device=device)

    def step() -> torch.Tensor:
        with autocast:
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        step()
    sync(device)
    spans, cpu = [], []
    for _ in range(steps // cfg.log_every):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(cfg.log_every):
            loss = step()
        loss.item()  # the trainer reads its losses at each log too
        sync(device)
        spans.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {"spans": spans, "cpu": cpu}


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(device, threads: int) -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "device": device.type,
        "load_average_at_start": load_average(),
    }
    with suppress(OSError, StopIteration):
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = info.get("cpu_model", info["processor"])
    return info


def si(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{prefix}{unit}"
    return f"{x:.3g}{unit}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--configs",
        help=f"comma list of {sorted(CONFIGS)}; default: {DEFAULTS['cpu']['configs']} on CPU, "
        f"{DEFAULTS['cuda']['configs']} on CUDA",
    )
    parser.add_argument("--steps", type=int, help="timed optimizer steps per run (default: 4 CPU, 50 CUDA)")
    parser.add_argument("--warmup", type=int, help="untimed steps before them (default: 1 CPU, 10 CUDA)")
    parser.add_argument(
        "--interval",
        type=int,
        help="steps per timed interval; warmup and steps round up to it (1 CPU, 10 CUDA)",
    )
    parser.add_argument(
        "--repeats", type=int, help="trainer/bare-loop alternations per config (2 CPU, 1 CUDA)"
    )
    parser.add_argument("--micro-batch", type=int, help="override every config's micro-batch")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all usable cores)")
    parser.add_argument("--matmul-reps", type=int, default=5, help="reps per size in each matmul probe")
    parser.add_argument(
        "--out",
        help="default: benchmarks/results/train.json (CPU), benchmarks/results/train_cuda.json (CUDA)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()

    import torch

    from slm_curator.train.model import GPT, PRESETS
    from slm_curator.train.trainer import build_model_config, peak_flops

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but torch sees no CUDA device")
    device_type = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device("cuda", 0) if device_type == "cuda" else torch.device("cpu")
    defaults = DEFAULTS[device_type]
    names = [n.strip() for n in (args.configs or defaults["configs"]).split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown config(s) {unknown}; allowed: {sorted(CONFIGS)}")
    for key in ("steps", "warmup", "interval", "repeats"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    if min(args.steps, args.interval, args.repeats) < 1 or args.warmup < 0:
        sys.exit("--steps, --interval and --repeats must be >= 1, --warmup >= 0")
    args.steps = -(-args.steps // args.interval) * args.interval
    args.warmup = -(-args.warmup // args.interval) * args.interval
    threads = args.threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    torch.set_num_threads(threads)
    out = Path(args.out or RESULTS / ("train_cuda.json" if device_type == "cuda" else "train.json"))

    machine = machine_info(device, threads)
    dtype = resolve_dtype(args.dtype, device_type)
    print(
        f"device: {machine['device_name']} ({device_type}), torch {torch.__version__}, {threads} threads, "
        f"{dtype_name(dtype)}; load average {machine['load_average_at_start']}",
        flush=True,
    )
    probes: list[dict] = []

    def probe(when: str) -> None:
        result = matmul_peak(device, dtype, MATMUL_SIZES[device_type], args.matmul_reps)
        probes.append({"when": when, **result})

    probe("start")
    datasheet = peak_flops(device, dtype)
    print(
        f"matmul probe (start): {si(probes[0]['flops_per_s'], 'FLOP/s')} (n={probes[0]['n']}); "
        f"datasheet peak: {si(datasheet, 'FLOP/s') if datasheet else 'none known'}",
        flush=True,
    )

    raw_rows = []
    for name in names:
        spec = dict(CONFIGS[name])
        if args.micro_batch:
            spec["micro_batch"] = args.micro_batch
        cfg = make_train_config(spec, args, device_type)
        context = spec["context"]
        vocab_size = PRESETS[spec["preset"]]["vocab_size"]  # shards use the preset's vocabulary
        with torch.device("meta"):
            meta = GPT(build_model_config(cfg, vocab_size, context + 1))
        flops_per_token = meta.flops_per_token(context)
        print(
            f"\n{name}: {meta.num_params() / 1e6:.1f}M params, context {context}, micro-batch "
            f"{cfg.micro_batch}, compile={cfg.compile}, {args.repeats} x ({args.warmup} warmup + "
            f"{args.steps} timed steps) each for trainer and bare loop",
            flush=True,
        )
        del meta
        ours: dict = {"spans": [], "cpu": [], "waits": [], "trainer_reported": []}
        bare: dict = {"spans": [], "cpu": []}
        with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
            rows_needed = (args.warmup + args.steps) * cfg.micro_batch * cfg.grad_accum
            shards = write_shards(Path(scratch), vocab_size, context, rows_needed, cfg.seed)
            for r in range(args.repeats):
                probe(f"{name} repeat {r + 1} trainer")
                run = run_trainer(cfg, shards, Path(scratch) / f"checkpoints_{r}", context, args.warmup)
                gc.collect()
                if device_type == "cuda":
                    torch.cuda.empty_cache()
                probe(f"{name} repeat {r + 1} bare loop")
                bare_run = run_bare_loop(cfg, device, vocab_size, context, args.warmup, args.steps)
                gc.collect()
                if device_type == "cuda":
                    torch.cuda.empty_cache()
                for key in ("spans", "cpu", "waits"):
                    ours[key] += run[key]
                ours["trainer_reported"].append(run["trainer_reported"])
                ours.update(final_loss=run["final_loss"], num_params=run["num_params"])
                for key in ("spans", "cpu"):
                    bare[key] += bare_run[key]
                tokens = cfg.log_every * cfg.micro_batch * cfg.grad_accum * context
                print(
                    f"  repeat {r + 1}: fastest interval: trainer {tokens / min(run['spans']):.0f} tok/s, "
                    f"bare loop {tokens / min(bare_run['spans']):.0f} tok/s; matmul probes "
                    f"{si(probes[-2]['flops_per_s'])}, {si(probes[-1]['flops_per_s'])} FLOP/s",
                    flush=True,
                )
        raw_rows.append((name, spec, cfg, context, vocab_size, flops_per_token, ours, bare))

    probe("end")
    mm = max(probes, key=lambda m: m["flops_per_s"])
    print(
        f"\nmatmul probe (end): {si(probes[-1]['flops_per_s'], 'FLOP/s')}; best of {len(probes)} probes: "
        f"{si(mm['flops_per_s'], 'FLOP/s')} (n={mm['n']}, {mm['when']})"
    )

    rows = []
    for name, spec, cfg, context, vocab_size, flops_per_token, ours, bare in raw_rows:
        tokens_per_step = cfg.micro_batch * cfg.grad_accum * context
        cpu_threads = threads if device_type == "cpu" else None
        t = summarize(ours["spans"], ours["cpu"], cfg.log_every, tokens_per_step, cpu_threads)
        b = summarize(bare["spans"], bare["cpu"], cfg.log_every, tokens_per_step, cpu_threads)

        rows.append(
            {
                "name": name,
                "preset": spec["preset"],
                "context": context,
                "micro_batch": cfg.micro_batch,
                "grad_accum": cfg.grad_accum,
                "dtype": dtype_name(dtype),
                "compile": cfg.compile,
                "num_params": ours["num_params"],
                "flops_per_token": flops_per_token,
                "warmup_steps": args.warmup,
                "repeats": args.repeats,
                **timing_fields(t),
                **flops_fields(t, flops_per_token, datasheet, mm["flops_per_s"]),
                "data_wait_fraction": round(sum(ours["waits"]) / sum(ours["spans"]), 4),
                "final_loss": round(ours["final_loss"], 4),
                "uniform_loss": round(math.log(vocab_size), 4),
                "bare_loop": {
                    **timing_fields(b),
                    **flops_fields(b, flops_per_token, datasheet, mm["flops_per_s"]),
                },
                "vs_bare_loop": round(t["tokens_per_s"] / b["tokens_per_s"], 3),
                "vs_bare_loop_median": ratio(t["tokens_per_s_median"], b["tokens_per_s_median"]),
                "vs_bare_loop_median_quiet": ratio(
                    t["tokens_per_s_median_quiet"], b["tokens_per_s_median_quiet"]
                ),
                "trainer_reported": ours["trainer_reported"],
            }
        )

    cpu = device_type == "cpu"
    second = "vs_bare_loop_median_quiet" if cpu else "vs_bare_loop_median"
    columns = [  # (header, width, cell)
        ("run", -20, lambda r: r["name"]),
        ("ctx", 5, lambda r: r["context"]),
        ("batch", 5, lambda r: r["micro_batch"]),
        ("params", 7, lambda r: si(r["num_params"])),
        ("tok/s", 8, lambda r: f"{r['tokens_per_s']:.0f}"),
        ("FLOP/s", 8, lambda r: si(r["model_flops_per_s"])),
        ("MFU sheet", 9, lambda r: pct(r["mfu_vs_datasheet"])),
        ("MFU vs mm", 9, lambda r: pct(r["mfu_vs_measured_matmul"])),
        ("data wait", 9, lambda r: pct(r["data_wait_fraction"])),
        ("bare tok/s", 10, lambda r: f"{r['bare_loop']['tokens_per_s']:.0f}"),
        ("vs bare", 7, lambda r: f"{r['vs_bare_loop']:.2f}"),
        ("quiet med" if cpu else "median", 9, lambda r: "-" if r[second] is None else f"{r[second]:.2f}"),
    ]
    if cpu:
        columns.append(
            (
                "CPU share",
                9,
                lambda r: f"{r['cpu_share_fastest']:.2f}/{r['bare_loop']['cpu_share_fastest']:.2f}",
            )
        )
    print("\n" + " ".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w, _ in columns))
    for r in rows:
        print(" ".join(f"{c(r)!s:<{-w}}" if w < 0 else f"{c(r)!s:>{w}}" for _, w, c in columns))
    sheet = si(datasheet, "FLOP/s") if datasheet else "none for this device"
    notes = [
        "tok/s: fastest timed interval",
        f"MFU sheet: vs the datasheet dense bf16 peak ({sheet})",
        f"MFU vs mm: vs the best measured {dtype_name(dtype)} matmul probe ({si(mm['flops_per_s'], 'FLOP/s')})",
        "vs bare: trainer tok/s / bare-loop tok/s, fastest intervals",
    ]
    if cpu:
        notes += [
            f"quiet med: the same from the medians of the quiet intervals (CPU share >= {QUIET_SHARE})",
            "CPU share: process CPU s / (wall s * threads) in the fastest trainer / bare-loop interval",
        ]
    else:
        notes.append("median: the same from the medians of all timed intervals")
    print("\n" + ".\n".join(notes) + ".")

    machine["load_average_at_end"] = load_average()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "train",
                "method": __doc__.split("\n    .venv")[0].strip(),
                "machine": machine,
                "settings": {
                    "warmup_steps": args.warmup,
                    "measured_steps_per_repeat": args.steps,
                    "interval_steps": args.interval,
                    "repeats": args.repeats,
                    "dtype": dtype_name(dtype),
                    "configs": {n: CONFIGS[n] for n in names},
                    "micro_batch_override": args.micro_batch,
                },
                "baselines": {
                    "datasheet_peak_flops_per_s": datasheet,
                    "measured_matmul_peak": {
                        "what": "best of reps of a square torch.mm in the training dtype, same threads; "
                        "the best of probes at the start, before each run and at the end",
                        "dtype": dtype_name(dtype),
                        "reps": args.matmul_reps,
                        "flops_per_s": mm["flops_per_s"],
                        "n": mm["n"],
                        "probes": probes,
                    },
                    "bare_loop": "forward + backward + clip + AdamW + zero_grad on one fixed on-device "
                    "batch, same model config/seed/micro-batch/dtype/compile; per row under bare_loop",
                },
                "results": rows,
            },
            indent=1,
        )
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
