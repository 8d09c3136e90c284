"""A training run in its own process, for tests that kill it: `python train_script.py CONFIG SPLITS CKPT_DIR LOG`.

CONFIG and SPLITS are JSON files (TrainConfig fields; split name -> shard paths). Each logged step's
loss is appended to LOG as a JSON line as soon as it is known (log_every=1 logs every step), and
the TrainResult summary is printed on stdout at the end. --step-sleep slows the run down so a test
can kill it mid-way; sleeping in the callback changes no numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from slm_curator.config import TrainConfig
from slm_curator.train.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("config", "splits", "checkpoint_dir", "log"):
        parser.add_argument(name)
    parser.add_argument("--step-sleep", type=float, default=0.0)
    args = parser.parse_args()

    def on_log(step: int, metrics: dict) -> None:
        with open(args.log, "a") as f:
            f.write(json.dumps({"step": step, "loss": metrics["loss"]}) + "\n")
        time.sleep(args.step_sleep)

    cfg = TrainConfig(**json.loads(Path(args.config).read_text()))
    splits = json.loads(Path(args.splits).read_text())
    result = train(cfg, splits, args.checkpoint_dir, on_log=on_log)
    print(json.dumps(result.summary()), flush=True)


if __name__ == "__main__":
    main()
