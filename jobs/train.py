"""Train job: token shards -> GPT checkpoints in MLflow; under torchrun (DDP) too, or TorchDistributor."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
