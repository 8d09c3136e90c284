"""Deduplication: exact hashes and MinHash-LSH near-duplicates, clustered by connected components on Spark."""
