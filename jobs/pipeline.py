"""Main job: run every stage on the embedded default or on --input files (spark-submit entry point)."""

import sys

from slm_curator.pipeline import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
