"""Evaluate job: trained models complete held-out story beginnings; an LLM judge grades and compares them."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
