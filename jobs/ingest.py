"""Ingest job: raw files (JSONL, Parquet, CSV, text, HTML, WARC/WET) -> documents + quarantine tables."""

import sys

from slm_curator.pipeline import ingest_main

if __name__ == "__main__":
    sys.exit(ingest_main(sys.argv[1:]))
