"""Train job: token shards -> GPT checkpoints, logged and registered in MLflow.

Runs as a plain process, under `torchrun --nproc_per_node N jobs/train.py` (DDP), or launches its
own workers through TorchDistributor with `--set train.launcher=torch_distributor`.
"""

import sys

from slm_curator.pipeline import train_main

if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1:]))
