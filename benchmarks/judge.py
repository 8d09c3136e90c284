"""Judge throughput: judged pairs/s with concurrent requests against sequential calls, same local server.

Baseline: `JudgeClient` with concurrency 1 (one request at a time). Ours: the same client with
`--concurrency` requests in flight. Both send the same pairwise prompts (each pair asked in both orders,
as the evaluation does) to one llama.cpp server (`LocalJudgeServer`, Gemma 3 270M, the local default
judge), with the reply cache off so every request reaches the server. Stories: TinyStories from
../shared/data/tinystories (real text), cut into a beginning and two continuations taken from two stories.
A warm-up request runs first. Order alternates across `--repeats` so both settings see the same load.

    .venv/bin/python benchmarks/judge.py     # prints a table, writes benchmarks/results/judge.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tinystories" / "train_head.jsonl"


def load_pairs(n: int) -> list[tuple[str, str, str]]:
    if not DATA.is_file():
        sys.exit(f"benchmarks/judge.py needs {DATA} (../shared/data ships with developer machines and CI)")
    stories = [json.loads(line)["text"] for line in DATA.read_text().splitlines() if line.strip()]
    stories = [s.split() for s in stories if len(s.split()) > 60]
    pairs = []
    for i in range(n):
        a, b = stories[2 * i], stories[2 * i + 1]
        pairs.append((" ".join(a[:30]), " " + " ".join(a[30:60]), " " + " ".join(b[30:60])))
    return pairs


def run(client, pairs) -> tuple[float, int]:
    from slm_curator.evaluate.pairwise import pairwise_messages

    requests = []
    for beginning, x, y in pairs:
        for a, b in ((x, y), (y, x)):
            requests.append((pairwise_messages(beginning, a, b), ("bench", beginning, a, b)))
    start = time.perf_counter()
    replies = client.chat_many(requests)
    return time.perf_counter() - start, sum(not r.ok for r in replies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="llama.cpp threads")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "judge.json"))
    args = parser.parse_args()

    from slm_curator.config import JudgeConfig
    from slm_curator.evaluate.client import JudgeClient
    from slm_curator.evaluate.local_judge import LocalJudgeServer

    pairs = load_pairs(args.pairs)
    base = JudgeConfig(local_threads=args.threads, max_tokens=4, logprobs=False, cache=False, timeout_s=300)
    timings: dict[int, list[float]] = {1: [], args.concurrency: []}
    errors = 0
    with LocalJudgeServer(base) as server:
        cfg = dataclasses.replace(base, base_url=server.base_url, model=server.model)
        with JudgeClient(dataclasses.replace(cfg, concurrency=1)) as warm:
            run(warm, pairs[:1])
        for rep in range(args.repeats):
            order = [1, args.concurrency] if rep % 2 == 0 else [args.concurrency, 1]
            for conc in order:
                with JudgeClient(dataclasses.replace(cfg, concurrency=conc)) as client:
                    seconds, failed = run(client, pairs)
                timings[conc].append(seconds)
                errors += failed
                print(f"  repeat {rep}: concurrency {conc}: {seconds:.1f}s", flush=True)

    rows = []
    for conc, secs in timings.items():
        best = min(secs)
        rows.append(
            {
                "setting": "sequential" if conc == 1 else f"concurrency {conc}",
                "concurrency": conc,
                "seconds": secs,
                "best_seconds": best,
                "pairs_per_s": len(pairs) / best,
                "requests_per_s": 2 * len(pairs) / best,
            }
        )
    rows[1]["vs_sequential"] = rows[1]["pairs_per_s"] / rows[0]["pairs_per_s"]
    print(f"\n{'setting':<16} {'pairs':>6} {'best s':>8} {'pairs/s':>8} {'req/s':>7} {'vs seq':>7}")
    for r in rows:
        print(
            f"{r['setting']:<16} {len(pairs):>6} {r['best_seconds']:>8.1f} {r['pairs_per_s']:>8.3f} "
            f"{r['requests_per_s']:>7.3f} {r.get('vs_sequential', 1.0):>6.2f}x"
        )
    result = {
        "benchmark": "judge",
        "method": __doc__,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "llama_threads": args.threads,
        },
        "judge": "gemma-3-270m (llama-cpp-python server, local default judge)",
        "pairs": len(pairs),
        "failed_requests": errors,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
