"""JudgeClient against a scripted OpenAI-compatible server on loopback.

The server is real HTTP (http.server in a thread), so retries, timeouts, headers and concurrency are
exercised through httpx exactly as against vLLM or llama.cpp, without a model or a network.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from slm_curator.config import JudgeConfig
from slm_curator.evaluate.client import JudgeClient, cache_key, parse_retry_after

KEY_ENV = "SLM_CURATOR_TEST_JUDGE_KEY"
MESSAGES = [{"role": "system", "content": "Grade the story."}, {"role": "user", "content": "Once upon"}]
PARTS = ("tinystories-v1", "Once upon", "a time there was a cat.")


@dataclass
class Reply:
    """What the scripted server answers to one request, after sleeping `delay` seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Step = Reply | Callable[[dict[str, Any]], Reply]


def completion(text: str, logprobs: bool = True) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }
    if logprobs:
        choice["logprobs"] = {
            "content": [
                {
                    "token": text,
                    "logprob": -0.1,
                    "top_logprobs": [{"token": text, "logprob": -0.1}, {"token": "3", "logprob": -2.4}],
                }
            ]
        }
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "judge-test", "choices": [choice]}


def ok(text: str = "4", *, delay: float = 0.0) -> Reply:
    return Reply(body=json.dumps(completion(text)).encode(), delay=delay)


def echo(delay: Callable[[str], float] = lambda _: 0.0) -> Step:
    """Answers with the last user message, so a test can tell which reply belongs to which request."""

    def step(request: dict[str, Any]) -> Reply:
        content = request["messages"][-1]["content"]
        return ok(f"echo:{content}", delay=delay(content))

    return step


class ScriptedServer:
    """Loopback chat-completions server: request i gets script[i] (the last step repeats).

    It records each request's headers and JSON body, and the most requests it had in flight at once.
    """

    def __init__(self) -> None:
        self.script: list[Step] = [ok()]
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a handler still sleeping past a client timeout is abandoned
        self.httpd.scripted = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        scripted: ScriptedServer = self.server.scripted  # type: ignore[attr-defined]
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with scripted.lock:
            scripted.requests.append({"path": self.path, "headers": dict(self.headers), "body": request})
            step = scripted.script.pop(0) if len(scripted.script) > 1 else scripted.script[0]
            scripted.in_flight += 1
            scripted.max_in_flight = max(scripted.max_in_flight, scripted.in_flight)
        reply = step(request) if callable(step) else step
        time.sleep(reply.delay)
        # Leave the in-flight count before answering: once the client has the answer it may send the next
        # request, and counting this one still would over-report concurrency.
        with scripted.lock:
            scripted.in_flight -= 1
        try:
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True  # the client gave up (timeout test)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def judge_config(url: str, **overrides: Any) -> JudgeConfig:
    settings: dict[str, Any] = {
        "base_url": url,
        "model": "judge-test",
        "api_key_env": KEY_ENV,
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_s": 0.01,
        "max_tokens": 8,
    }
    return JudgeConfig(**{**settings, **overrides})


def test_answer_with_logprobs_and_request_shape(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    with JudgeClient(judge_config(server.url + "/")) as client:
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)

    assert reply.ok and reply.error is None
    assert reply.text == "4"
    assert reply.top_logprobs == [{"4": -0.1, "3": -2.4}]
    assert (reply.attempts, reply.cached) == (1, False)
    assert reply.raw == completion("4")
    assert reply.latency_s >= 0
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    assert request["body"] == {
        "model": "judge-test",
        "messages": MESSAGES,
        "temperature": 0.0,
        "max_tokens": 8,
        "logprobs": True,
        "top_logprobs": 5,
    }


def test_no_logprobs_requested_or_returned_and_no_key(server):
    server.script = [Reply(body=json.dumps(completion("5", logprobs=False)).encode())]
    with JudgeClient(judge_config(server.url, logprobs=False)) as client:
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)

    assert (reply.text, reply.top_logprobs) == ("5", None)
    (request,) = server.requests
    assert "Authorization" not in request["headers"]
    assert "logprobs" not in request["body"] and "top_logprobs" not in request["body"]


def test_malformed_json_is_an_error_not_retried_nor_cached(server, tmp_path):
    server.script = [Reply(body=b'{"choices": [')]
    with JudgeClient(judge_config(server.url), cache_path=tmp_path / "cache.db") as client:
        first = client.chat(MESSAGES, cache_key_parts=PARTS)
        second = client.chat(MESSAGES, cache_key_parts=PARTS)

    assert first.text is None and first.raw is None
    assert "malformed JSON" in first.error and "after 1 attempt)" in first.error
    assert not second.cached and second.error
    assert len(server.requests) == 2


def test_unexpected_shape_is_an_error(server):
    server.script = [Reply(body=b'{"error": "no choices here"}')]
    with JudgeClient(judge_config(server.url)) as client:
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)
    assert reply.error and "unexpected response shape" in reply.error
    assert len(server.requests) == 1


def test_slow_answer_times_out_and_is_retried(server):
    server.script = [ok(delay=3.0)]
    with JudgeClient(judge_config(server.url, timeout_s=0.3, max_retries=1)) as client:
        start = time.monotonic()
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)
        elapsed = time.monotonic() - start

    assert reply.error and "timed out" in reply.error
    assert reply.attempts == 2 and len(server.requests) == 2
    assert elapsed < 2.5  # gave up on both attempts instead of waiting for the server


def test_server_error_then_success(server):
    server.script = [Reply(status=500, body=b'{"error": "boom"}'), ok("3")]
    with JudgeClient(judge_config(server.url)) as client:
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)
    assert (reply.text, reply.attempts, reply.error) == ("3", 2, None)
    assert len(server.requests) == 2


def test_server_errors_exhaust_retries(server):
    server.script = [Reply(status=503, body=b"overloaded")]
    with JudgeClient(judge_config(server.url, max_retries=2)) as client:
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)
    assert reply.error == "HTTP 503: overloaded (after 3 attempts)"
    assert reply.attempts == 3 and len(server.requests) == 3


def test_rate_limit_honours_retry_after(server):
    server.script = [Reply(status=429, body=b'{"error": "slow down"}', headers={"Retry-After": "1"}), ok()]
    with JudgeClient(judge_config(server.url, backoff_s=0.01)) as client:
        start = time.monotonic()
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)
        elapsed = time.monotonic() - start

    assert (reply.text, reply.attempts, reply.error) == ("4", 2, None)
    assert 0.9 <= elapsed < 10  # waited for the server's second, not the 10 ms backoff


def test_client_error_is_not_retried(server):
    server.script = [Reply(status=400, body=b'{"error": "bad request: unknown model"}')]
    with JudgeClient(judge_config(server.url, max_retries=3)) as client:
        reply = client.chat(MESSAGES, cache_key_parts=PARTS)
    assert reply.error.startswith("HTTP 400: ") and "unknown model" in reply.error
    assert reply.attempts == 1 and len(server.requests) == 1


def test_connection_refused_is_retried_then_returned():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = judge_config(f"http://127.0.0.1:{port}/v1", max_retries=2)
    with JudgeClient(config) as client:
        replies = client.chat_many([(MESSAGES, PARTS), (MESSAGES, ("other",))])
    for reply in replies:
        assert reply.text is None and reply.attempts == 3
        assert "ConnectError" in reply.error


def test_cache_avoids_second_call_and_survives_a_new_client(server, tmp_path):
    path = tmp_path / "judge" / "cache.sqlite"
    with JudgeClient(judge_config(server.url), cache_path=path) as client:
        first = client.chat(MESSAGES, cache_key_parts=PARTS)
        second = client.chat(MESSAGES, cache_key_parts=PARTS)
    assert (first.cached, second.cached) == (False, True)
    assert second.attempts == 0
    assert (second.text, second.top_logprobs, second.raw) == (first.text, first.top_logprobs, first.raw)
    assert len(server.requests) == 1

    with JudgeClient(judge_config(server.url), cache_path=path) as client:
        again = client.chat(MESSAGES, cache_key_parts=PARTS)
        other_completion = client.chat(MESSAGES, cache_key_parts=(*PARTS[:2], "a different story."))
    assert again.cached and again.text == "4"
    assert not other_completion.cached
    assert len(server.requests) == 2

    with JudgeClient(judge_config(server.url, model="another-judge"), cache_path=path) as client:
        assert not client.chat(MESSAGES, cache_key_parts=PARTS).cached
    with JudgeClient(judge_config(server.url, cache=False), cache_path=path) as client:
        assert not client.chat(MESSAGES, cache_key_parts=PARTS).cached
    assert len(server.requests) == 4


def test_chat_many_bounds_concurrency_and_keeps_order(server, tmp_path):
    # Later requests answer sooner, so completion order differs from input order.
    server.script = [echo(delay=lambda content: 0.05 + 0.05 * (3 - int(content) % 4))]
    requests = [([{"role": "user", "content": str(i)}], ("v1", str(i), "")) for i in range(12)]
    with JudgeClient(judge_config(server.url, concurrency=3), cache_path=tmp_path / "c.db") as client:
        replies = client.chat_many(requests)

    assert [r.text for r in replies] == [f"echo:{i}" for i in range(12)]
    assert all(r.error is None and not r.cached for r in replies)
    assert len(server.requests) == 12
    assert 1 < server.max_in_flight <= 3


def test_chat_many_returns_errors_among_successes(server):
    def step(request: dict[str, Any]) -> Reply:
        if request["messages"][-1]["content"] == "bad":
            return Reply(status=422, body=b'{"error": "unprocessable"}')
        return echo()(request)

    server.script = [step]
    contents = ["a", "bad", "c"]
    with JudgeClient(judge_config(server.url)) as client:
        replies = client.chat_many([([{"role": "user", "content": c}], (c,)) for c in contents])
        assert client.chat_many([]) == []

    assert [r.text for r in replies] == ["echo:a", None, "echo:c"]
    assert [r.error is None for r in replies] == [True, False, True]
    assert "HTTP 422" in replies[1].error


def test_backoff_doubles_with_bounded_jitter_and_yields_to_retry_after(server):
    with JudgeClient(judge_config(server.url, backoff_s=0.5)) as client:
        waits = [client._backoff("k", retry, None) for retry in range(3)]
        assert waits == [client._backoff("k", retry, None) for retry in range(3)]  # reproducible
        assert client._backoff("k", 0, retry_after=7.0) == 7.0
    for retry, wait in enumerate(waits):
        assert 0.5 * 2**retry <= wait < 0.5 * 2**retry * 1.1


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(formatdate(now + 5, usegmt=True), now=now) == pytest.approx(5.0)
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after("86400") == 300.0  # capped
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_cache_key_is_unambiguous():
    assert cache_key("m", ("ab", "c")) != cache_key("m", ("a", "bc"))
    assert cache_key("m", ("a",)) != cache_key("n", ("a",))
    assert cache_key("m", ("a", "b")) == cache_key("m", ("a", "b"))


def test_empty_base_url_is_refused():
    with pytest.raises(ValueError, match="base_url"):
        JudgeClient(JudgeConfig(base_url=""))
