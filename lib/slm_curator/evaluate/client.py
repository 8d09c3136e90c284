"""A small client for an OpenAI-compatible chat endpoint used as an LLM judge.

Judging means thousands of short, independent requests against an endpoint that may rate-limit, time
out or restart (vLLM, Databricks model serving, OpenAI, llama.cpp's server). So the client bounds
concurrency, retries what is transient with exponential backoff (honouring `Retry-After`), returns
failures as data instead of raising (one bad request must not lose a whole evaluation), and caches
successful answers in SQLite so a re-run does not pay for, or wait on, the same judgement twice.

It speaks plain HTTP through httpx rather than the `openai` SDK: the handful of fields used here is
stable across servers, and the SDK would add a dependency for no gain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz
from pathlib import Path
from typing import Any

import httpx

from slm_curator.config import JudgeConfig

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
ChatRequest = tuple[Messages, tuple[str, ...]]

# How many alternatives per output token to ask for: enough to cover the score digits a rubric uses.
TOP_LOGPROBS = 5
# Upper bound on a server's Retry-After, so a bogus date cannot park a worker for hours.
MAX_RETRY_AFTER_S = 300.0
# Backoff waits are stretched by up to this fraction so that concurrent retries do not arrive in step.
JITTER_FRACTION = 0.1


@dataclass
class JudgeReply:
    """One judge answer, or why there is none; `raw` is the response JSON, kept for storage and audit."""

    text: str | None
    top_logprobs: list[dict[str, float]] | None
    latency_s: float
    attempts: int
    cached: bool = False
    error: str | None = None
    raw: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Retryable(Exception):
    """A failure worth another attempt; `retry_after` is the server's requested wait, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure another attempt cannot fix (a 4xx other than 429, a malformed answer)."""


def cache_key(model: str, parts: Sequence[str]) -> str:
    """sha256 over a JSON list, so ("ab", "c") and ("a", "bc") cannot collide as plain joins would."""
    payload = json.dumps([model, *parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110); None if unusable.

    `now` is a Unix time, for tests; HTTP-dates are compared with the wall clock.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = parsedate_tz(value)
        if parsed is None:
            return None
        seconds = mktime_tz(parsed) - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _parse_reply(body: dict[str, Any]) -> tuple[str | None, list[dict[str, float]] | None]:
    """(message text, per-token {token: logprob} alternatives) from a chat-completions body, or _Fatal."""
    try:
        choice = body["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"message content is {type(text).__name__}")
        content = (choice.get("logprobs") or {}).get("content")
        if content is None:
            return text, None
        per_token: list[dict[str, float]] = []
        for item in content:
            # The chosen token always joins its alternatives: some servers send only it, and a sampled
            # token can fall outside the top list, which would leave the written text unreconstructable.
            alternatives = {alt["token"]: float(alt["logprob"]) for alt in item.get("top_logprobs") or []}
            alternatives.setdefault(item["token"], float(item["logprob"]))
            per_token.append(alternatives)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise _Fatal(f"unexpected response shape ({type(exc).__name__}: {exc})") from exc
    return text, per_token


class _ReplyCache:
    """Successful response bodies in SQLite, by cache key; one connection guarded by a lock.

    WAL mode lets another process (a second evaluation, a notebook) read the file while this one writes.
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS replies ("
                "key TEXT PRIMARY KEY, model TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL)"
            )
            self._conn.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored body, or None; a cache that cannot be read costs a request, not the evaluation."""
        try:
            with self._lock:
                row = self._conn.execute("SELECT body FROM replies WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            log.warning("judge cache read failed, asking the endpoint instead: %s", exc)
            return None
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, body: dict[str, Any]) -> None:
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO replies (key, model, body, created_at) VALUES (?, ?, ?, ?)",
                    (key, model, json.dumps(body, ensure_ascii=False), time.time()),
                )
                self._conn.commit()
        except sqlite3.Error as exc:
            log.warning("judge cache write failed; the reply is returned but not cached: %s", exc)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class JudgeClient:
    """Chat completions against `config.base_url`, with retries, bounded concurrency and a reply cache.

    The cache is used when `cache_path` is given and `config.cache` is true. `config.timeout_s` bounds
    each connect, read and write wait of one attempt (httpx has no single whole-request deadline).
    Use as a context manager, or call `close()`, to release the connection pool and the cache file.
    """

    def __init__(self, config: JudgeConfig, cache_path: str | Path | None = None):
        if not config.base_url:
            raise ValueError(
                "evaluate.judge.base_url: empty; start the local judge first and pass its URL "
                "(e.g. http://127.0.0.1:8080/v1)"
            )
        if config.concurrency < 1:
            raise ValueError(f"evaluate.judge.concurrency: must be >= 1, got {config.concurrency}")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(
                max_connections=config.concurrency, max_keepalive_connections=config.concurrency
            ),
        )
        self._cache = _ReplyCache(cache_path) if cache_path is not None and config.cache else None

    def __enter__(self) -> JudgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self._cache is not None:
            self._cache.close()

    def chat(self, messages: Messages, *, cache_key_parts: tuple[str, ...]) -> JudgeReply:
        """One judgement; never raises for endpoint trouble: a failure comes back with `error` set.

        `cache_key_parts` should be everything besides the judge model that determines the answer,
        typically (rubric version, prompt, completion).
        """
        start = time.monotonic()
        key = cache_key(self.config.model, cache_key_parts)
        if self._cache is not None:
            body = self._cache.get(key)
            if body is not None:
                try:
                    text, top = _parse_reply(body)
                except _Fatal:  # only parsed bodies are stored, but the file may be from elsewhere
                    log.warning("judge cache entry %s is unreadable; asking the endpoint again", key)
                else:
                    return JudgeReply(text, top, time.monotonic() - start, attempts=0, cached=True, raw=body)

        attempts = 0
        while True:
            attempts += 1
            try:
                body = self._post(messages)
                text, top = _parse_reply(body)
            except _Fatal as exc:
                return _failed(exc, attempts, start)
            except _Retryable as exc:
                if attempts > self.config.max_retries:
                    return _failed(exc, attempts, start)
                wait = self._backoff(key, attempts - 1, exc.retry_after)
                log.debug("judge request failed (%s); retry %d in %.2fs", exc, attempts, wait)
                time.sleep(wait)
                continue
            if self._cache is not None:
                self._cache.put(key, self.config.model, body)
            return JudgeReply(text, top, time.monotonic() - start, attempts=attempts, raw=body)

    def chat_many(self, requests: Sequence[ChatRequest]) -> list[JudgeReply]:
        """Replies in input order, at most `config.concurrency` requests in flight at once."""
        if not requests:
            return []
        workers = min(self.config.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
            return list(pool.map(lambda req: self.chat(req[0], cache_key_parts=req[1]), requests))

    def _payload(self, messages: Messages) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if self.config.logprobs:
            payload.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return payload

    def _post(self, messages: Messages) -> dict[str, Any]:
        """One attempt: the response body, or _Retryable / _Fatal saying why not."""
        try:
            response = self._http.post(self.url, json=self._payload(messages))
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timed out after {self.config.timeout_s}s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(
                f"HTTP {status}: {_snippet(response.text)}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise _Fatal(f"HTTP {status}: {_snippet(response.text)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise _Fatal(f"malformed JSON in response: {_snippet(response.text)}") from exc
        if not isinstance(body, dict):
            raise _Fatal(f"response JSON is not an object: {_snippet(response.text)}")
        return body

    def _backoff(self, key: str, retry: int, retry_after: float | None) -> float:
        """backoff_s * 2**retry plus a jitter seeded by (request, retry), never shorter than Retry-After.

        Seeding by the request keeps runs reproducible while still spreading concurrent retries apart.
        """
        delay = self.config.backoff_s * 2**retry
        seed = hashlib.sha256(f"{key}:{retry}".encode()).digest()
        delay *= 1 + JITTER_FRACTION * int.from_bytes(seed[:4], "big") / 2**32
        return max(delay, retry_after or 0.0)


def _failed(exc: Exception, attempts: int, start: float) -> JudgeReply:
    plural = "s" if attempts != 1 else ""
    return JudgeReply(
        None,
        None,
        time.monotonic() - start,
        attempts=attempts,
        error=f"{exc} (after {attempts} attempt{plural})",
    )


def _snippet(text: str, limit: int = 200) -> str:
    """The start of a response body, for error messages that stay one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
