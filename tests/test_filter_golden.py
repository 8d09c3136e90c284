"""The filter's decisions and signals on a fixed sample are the ones recorded before the registry refactor.

tests/golden/filter_analysis.json.gz was written by the code before filters became a registry of
families (tests/golden/filter_golden.py says how); any change to a reason, a signal value, the
language or the cleaned text of any recorded document fails here.
"""

from __future__ import annotations

import gzip
import json

import pytest
from tests.golden import filter_golden as golden


@pytest.fixture(scope="module")
def recorded():
    with gzip.open(golden.GOLDEN, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _compare(expected: list[dict], actual: list[dict]) -> None:
    assert len(actual) == len(expected) > 0
    for want, got in zip(expected, actual, strict=True):
        assert got["text_sha"] == want["text_sha"], "the sample itself changed"
        assert got == want, f"document {want['text_sha']}: {want} != {got}"


@pytest.mark.parametrize("part", ["sample", "edge_cases", "variant"])
def test_recorded_output_is_unchanged(recorded, part):
    texts = {"sample": golden.sample_texts, "edge_cases": lambda: golden.EDGE_CASES}
    if part == "variant":
        actual = golden.analyse(golden.sample_texts() + golden.EDGE_CASES, golden.variant_config())
    else:
        actual = golden.analyse(texts[part]())
    _compare(recorded[part], actual)


def test_recorded_output_on_real_web_pages_is_unchanged(recorded):
    from tests.conftest import shared_data

    _compare(recorded["web"], golden.analyse(golden.web_texts(shared_data("web"))))
