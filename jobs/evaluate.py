"""Evaluate job: trained models complete held-out story beginnings; an LLM judge grades and compares them."""

import sys

from slm_curator.pipeline import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main(sys.argv[1:]))
