"""Main job: run every stage on the embedded default or on --input files (spark-submit entry point)."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
