"""Validate job: every data-quality suite in conf/checks on its table -> dq_results; exit 4 on errors."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
