"""Ingest job: raw files (JSONL, Parquet, CSV, text, HTML, WARC/WET) -> documents + quarantine tables."""

import sys

from slm_curator.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
