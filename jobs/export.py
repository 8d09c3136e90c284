"""Export job: curated Delta table -> BPE tokenizer, quality-weighted mixed token shards, `shards` table."""

import sys

from slm_curator.pipeline import export_main

if __name__ == "__main__":
    sys.exit(export_main(sys.argv[1:]))
