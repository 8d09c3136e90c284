"""Labels job: label files, reference-vs-web pairs and LLM annotations -> quality_labels."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["labels", *sys.argv[1:]]))
