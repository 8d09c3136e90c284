"""Generate job: completions from a trained model (folder or MLflow URI), one JSON line per prompt."""

import sys

from slm_curator.pipeline import generate_main

if __name__ == "__main__":
    sys.exit(generate_main(sys.argv[1:]))
