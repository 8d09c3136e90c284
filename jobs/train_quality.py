"""Quality-model job: quality_labels -> frozen encoder + linear head, held-out metrics, registered with an alias."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["train_quality", *sys.argv[1:]]))
