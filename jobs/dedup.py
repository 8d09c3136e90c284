"""Dedup job: filtered -> deduped (exact hashes, MinHash LSH, connected components, representatives)."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["dedup", *sys.argv[1:]]))
