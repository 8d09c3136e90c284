"""Filter job: documents -> filtered (C4, Gopher, FineWeb, language, bad words); --dry-run writes nothing."""

import sys

from slm_curator.pipeline import filter_main

if __name__ == "__main__":
    sys.exit(filter_main(sys.argv[1:]))
