"""The score stage's Spark NLP backend against the Python one, on real documents, as a user runs it.

Spark NLP for Scala 2.12 (Spark 3.5) is the build served here, so this runs in the 3.5 venv (.ci/run's
second part); Spark NLP 7 for Scala 2.13 is in config for clusters that reach it, untested here.

Two job runs over the same documents: ingest plus the score stage on torch, then the score stage
alone on Spark NLP, both with the package's words-chunked model. Documents: real web pages and prose
from ../shared/data plus the text a tokenizer mismatch would show on (curly quotes, accents, CJK,
right-to-left script, emoji, URLs, long pages sampled by windows, one word, markup).
"""

from __future__ import annotations

import gzip
import json
import subprocess

import numpy as np
import pytest
from tests.conftest import ROOT, job_args, job_env, shared_data, venv_python

from slm_curator.config import running_spark_line

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark_line,
    pytest.mark.skipif(
        running_spark_line() != "3.5",
        reason="Spark NLP's served build is for Scala 2.12 (Spark 3.5): .ci/run runs this in the 3.5 venv",
    ),
]

EDGE_CASES = [
    "\u201cWe\u2019re closing early today,\u201d she said \u2014 \u2018for good\u2019 this time\u2026 Or so it seemed.",
    "Le caf\u00e9 na\u00efve \u00e0 c\u00f4t\u00e9 de l\u2019\u00e9glise propose cr\u00e8me br\u00fbl\u00e9e et th\u00e9. "
    * 6,
    "Stra\u00dfe \u00fcber M\u00fcnchen: \u00c4rger mit \u00d6ffnungszeiten. Gr\u00fc\u00dfe aus K\u00f6ln! "
    * 5,
    "\u6771\u4eac\u306e\u5929\u6c17\u306f\u6674\u308c\u3067\u3059\u3002\u5317\u4eac\u5e02\u6d77\u6dc0\u533a\u306e"
    "\u5927\u5b66\u3067\u7814\u7a76\u3057\u3066\u3044\u307e\u3059\u3002 Tokyo weather is sunny today.",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0643\u0645 \u0641\u064a \u0627\u0644\u0645\u0648\u0642\u0639 "
    "\u0627\u0644\u0631\u0633\u0645\u064a. Welcome to the official site. \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd.",
    "Great recipe!!! \U0001f60d\U0001f60d\U0001f44d Made it twice :-) 10/10 would bake again #yum @baker_jane",
    "See https://example.com/a/b?c=1&d=2#frag or mail info@example.org; call +1 (555) 010-9999 "
    "before 09:30 on 2019-04-26. Price: $1,299.99 (-15%).",
    "Anonymous 04/26/19(Fri)22:36:49 No.211302460 >>211302301 >implying this works\n"
    "Anonymous 04/26/19(Fri)22:37:02 No.211302477 it does tho",
    "<div class='nav'>Home | About | Contact</div> | col1 | col2 |\n|---|---|\n| 3.14 | x_y_z |",
    "한국어 텍스트입니다. 서울특별시의 날씨는 맑습니다! Seoul is sunny.",
    "Tiếng Việt có dấu: người Việt Nam ở Hà Nội. Ελληνικά άλφα. Йод ёлка.",
    "カテゴリ:0verflow 出典: へっぽこ実験ウィキ『八百科事典』",
    "Word",
    ("The committee reviewed the long report section by section and found it thorough. " * 150).strip(),
]


def _corpus(tmp_path) -> tuple[str, int]:
    docs = []
    with gzip.open(shared_data("web", "dolma_cc_2019-30_sample.jsonl.gz"), "rt") as f:
        docs += [json.loads(line)["text"] for _, line in zip(range(70), f, strict=False)]
    with gzip.open(shared_data("web", "c4_en_sample_1000.jsonl.gz"), "rt") as f:
        docs += [json.loads(line)["text"] for _, line in zip(range(25), f, strict=False)]
    prose = shared_data("prose", "wikitext-2-valid.tokens.txt").read_text(encoding="utf-8")
    docs += [p.strip() for p in prose.split("\n = ")[1:11]]
    docs += EDGE_CASES
    path = tmp_path / "corpus" / "docs.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    return str(path), len(docs)


def _score(tmp_path, corpus, stages: str, backend: str, model: str) -> dict[str, float]:
    from slm_curator.delta import to_arrow

    sets = [
        "score.input_table=documents",
        "score.where=",
        "score.text_column=text",
        f"score.backend={backend}",
        f"score.model={model}",
        "checks.enabled=false",  # the scored gate is tested with the stage; here only the scores matter
    ]
    run = subprocess.run(
        [venv_python(), "jobs/pipeline.py", "--stages", stages, *job_args(tmp_path, corpus, *sets)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
        env=job_env(tmp_path),
    )
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-4000:])
    table = to_arrow(str(tmp_path / "data" / "tables" / "scored"), columns=["doc_id", "quality_score"])
    return {r["doc_id"]: r["quality_score"] for r in table.to_pylist()}


def test_spark_nlp_scores_match_the_python_backend_on_real_documents(tmp_path):
    from scipy.stats import spearmanr

    from slm_curator.quality.model import DEFAULT_WORDS_MODEL_DIR

    corpus, n = _corpus(tmp_path)
    python = _score(tmp_path, corpus, "ingest,score", "torch", str(DEFAULT_WORDS_MODEL_DIR))
    jvm = _score(tmp_path, corpus, "score", "sparknlp", "")
    assert len(jvm) >= n - 5  # ingest sets aside empty and exactly repeated records
    assert python.keys() == jvm.keys()
    ids = sorted(python)
    a = np.array([python[i] for i in ids])
    b = np.array([jvm[i] for i in ids])
    rho = spearmanr(a, b)[0]
    worst = float(np.abs(a - b).max())
    print(f"Spark NLP vs torch on {len(ids)} documents: Spearman {rho:.6f}, max |difference| {worst:.1e}")
    assert rho >= 0.999, rho
    assert worst < 1e-3, sorted(zip(np.abs(a - b), ids, strict=True))[-5:]
