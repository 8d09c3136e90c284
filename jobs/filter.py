"""Filter job: documents -> filtered (C4, Gopher, FineWeb, language, bad words); --dry-run writes nothing."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["filter", *sys.argv[1:]]))
