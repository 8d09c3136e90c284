"""Score job: deduped representatives (or any table) -> scored, a model quality score per row."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
