"""Generate job: completions from a trained model (folder or MLflow URI), one JSON line per prompt."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
