"""Ablation job: the same small model trained on raw and on each curated table, compared side by side."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["ablation", *sys.argv[1:]]))
