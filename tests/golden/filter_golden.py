"""The filter's output on a fixed sample, recorded so a refactor can prove it changed no decision or signal.

`python -m tests.golden.filter_golden --write` records the current code's output in
filter_analysis.json.gz; tests/test_filter_golden.py compares against it. Regenerate it only for a
deliberate change of the filter's behaviour, and say so in the commit.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "filter_analysis.json.gz"
SAMPLE_DOCUMENTS = 600
WEB_DOCUMENTS = 400

# Edge cases the sample corpus does not cover: empty and blank text, one word, lone surrogates,
# scripts without spaces, right-to-left text, symbol-heavy forum and code text, a repeated word.
EDGE_CASES = [
    "",
    "   \n\n\t ",
    "word",
    "Hello\ud800 world. This text has a lone surrogate in it, as bad decoding leaves.",
    "这是一个中文句子。我们今天去公园散步，天气很好。" * 20,
    "هذه جملة باللغة العربية. نحن نذهب إلى السوق كل يوم لشراء الخبز والحليب." * 10,
    "Anonymous 04/26/19(Fri)22:36:49 No.211302460\n>>211302000\nlol no. that's not how it works at all.\n"
    * 15,
    "def f(x):\n    return {x: x ** 2 for x in range(10)}\n\nprint(f(3))  # prints a dict\n" * 8,
    "buffalo " * 3000,
    "The quick brown fox jumps over the lazy dog. " * 400,
    "#hashtag #another #more " * 50 + "\nSee https://example.com/a#b#c#d#e for more.",
    "...... …… ...... and so on...\n" * 30,
    "- item one\n- item two\n- item three\n• bullet\n" * 25,
    "\n\n\n\nshort\n\n\n\nlines\n\n\n\n" * 40,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20,
    "Das ist ein deutscher Text. Wir gehen heute in den Park, weil das Wetter schön ist. " * 20,
]


def sample_texts() -> list[str]:
    """The embedded sample corpus's documents as the pure readers parse them (no Spark)."""
    from slm_curator.config import IngestConfig
    from slm_curator.ingest.stage import list_input_files, parsed_rows, reader_options
    from slm_curator.sample_corpus import write_sample_corpus

    opts = reader_options(IngestConfig())
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_sample_corpus(Path(tmp) / "corpus", SAMPLE_DOCUMENTS)
        rows = [r for f in list_input_files([str(folder)]) for r in parsed_rows(f, opts, None)]
    return [r["text"] for r in sorted(rows, key=lambda r: r["doc_id"]) if r["reason"] is None]


def web_texts(folder: Path) -> list[str]:
    texts = []
    for path in sorted(folder.glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            texts.extend(json.loads(line).get("text") or "" for line in fh)
    return texts[:: max(1, len(texts) // WEB_DOCUMENTS)][:WEB_DOCUMENTS]


def record(text: str, analysis) -> dict:
    def num(v: float):
        return None if isinstance(v, float) and math.isnan(v) else round(float(v), 9)

    return {
        "text_sha": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16],
        "reasons": list(analysis.reasons),
        "language": analysis.language,
        "language_score": round(analysis.language_score, 6),
        "text_clean_sha": hashlib.sha256(analysis.text_clean.encode()).hexdigest()[:16],
        "signals": {k: num(v) for k, v in analysis.signals.items()},
    }


def variant_config():
    """Non-default switches whose semantics the rules must keep (exclusions, zero thresholds, lists)."""
    import dataclasses

    base = recorded_config()
    return dataclasses.replace(
        base,
        c4=dataclasses.replace(base.c4, min_num_sentences=0, filter_curly_bracket=False),
        fineweb=dataclasses.replace(base.fineweb, line_punct_exclude_zero=True),
        language=dataclasses.replace(base.language, keep=[]),
        bad_words=dataclasses.replace(base.bad_words, max_matches=2),
    )


def recorded_config():
    """The defaults the record was made with: language ID by lingua, the default before fastText
    (fastText's own decisions are tested in tests/test_filters.py and the filter benchmark)."""
    import dataclasses

    from slm_curator.config import FilterConfig

    base = FilterConfig()
    return dataclasses.replace(base, language=dataclasses.replace(base.language, backend="lingua"))


def analyse(texts: list[str], cfg=None) -> list[dict]:
    from slm_curator.filters.document import analyze

    cfg = cfg or recorded_config()
    return [record(t, analyze(t, cfg)) for t in texts]


def main() -> None:
    shared_web = HERE.parents[2] / "shared" / "data" / "web"
    golden = {
        "sample": analyse(sample_texts()),
        "edge_cases": analyse(EDGE_CASES),
        "web": analyse(web_texts(shared_web)) if shared_web.is_dir() else [],
        "variant": analyse(sample_texts() + EDGE_CASES, variant_config()),
    }
    with gzip.open(GOLDEN, "wt", encoding="utf-8") as fh:
        json.dump(golden, fh, sort_keys=True)
    print({k: len(v) for k, v in golden.items()}, "->", GOLDEN)


if __name__ == "__main__" and "--write" in sys.argv:
    main()
