"""Export job: curated Delta table -> BPE tokenizer, quality-weighted mixed token shards, `shards` table."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
