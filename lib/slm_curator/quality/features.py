"""Document features a quality head may read beside the embedding: length and the filters' signals.

An embedding of pooled chunks says what a page is about and how it reads, but not how long it is or
how much of it is menu lines; length alone is a strong baseline on human labels. The features are
computed from the text itself with the filter families' own signal functions (default thresholds do
not matter: only signals are read), so a model scores any text the same way whether or not it went
through the filter stage. Language ID and bad words are left out: slow, and not about quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# Derived from the core counts: lengths on a log scale (a page twice as long is not twice as good).
DERIVED = {
    "log_chars": lambda s: math.log1p(s["n_chars"]),
    "log_words": lambda s: math.log1p(s["n_tokens"]),
    "log_lines": lambda s: math.log1p(s.get("n_lines", 0)),
    "log_words_per_line": lambda s: math.log1p(s["n_tokens"] / max(s.get("n_lines", 0), 1)),
    "stop_word_ratio": lambda s: s.get("gopher_stop_words", 0) / max(s["n_tokens"], 1),
    "c4_kept_line_ratio": lambda s: s.get("c4_lines_kept", 0) / max(s.get("n_lines", 0), 1),
    "log_sentences": lambda s: math.log1p(s.get("c4_sentences", 0)),
}
# Every signal the filter families compute, and the derived lengths. Raw counts (lines, sentences,
# lines without terminal punctuation ...) are bounded at CLIP, so beyond a few they say only "many":
# what they add is the shape of short pages, which the held-out annotations rewarded (README).
DEFAULT_FEATURES = (
    *("log_chars", "log_words", "log_lines", "log_words_per_line", "stop_word_ratio"),
    *("c4_kept_line_ratio", "log_sentences", "n_chars", "n_tokens", "n_lines", "c4_lines_kept"),
    *("c4_lines_long_word", "c4_lines_no_terminal_punct", "c4_lines_few_words", "c4_lines_javascript"),
    *("c4_lines_policy", "c4_sentences", "c4_lorem_ipsum", "c4_curly_bracket", "gopher_words"),
    *("gopher_mean_word_length", "gopher_hash_ratio", "gopher_ellipsis_ratio", "gopher_bullet_lines_ratio"),
    *("gopher_ellipsis_lines_ratio", "gopher_alpha_words_ratio", "gopher_stop_words"),
    *("gopher_rep_dup_para_frac", "gopher_rep_dup_para_char_frac", "gopher_rep_dup_line_frac"),
    *("gopher_rep_dup_line_char_frac", *(f"gopher_rep_top_{n}_gram_char_frac" for n in (2, 3, 4))),
    *(f"gopher_rep_dup_{n}_gram_char_frac" for n in range(5, 11)),
    *("fineweb_line_punct_ratio", "fineweb_short_line_ratio", "fineweb_char_dup_ratio"),
    *("fineweb_list_ratio", "fineweb_lines"),
)
LENGTH_FEATURE = "log_words"
CLIP = 10.0  # ratios that can exceed 1 ("#" in URLs) are bounded so one odd page cannot dominate


@lru_cache(maxsize=1)
def _filters():
    from slm_curator.config import FilterConfig
    from slm_curator.filters.document import Filters

    cfg = FilterConfig()
    cfg.language.enabled = False
    cfg.bad_words.enabled = False
    return Filters(cfg)


def known_features() -> list[str]:
    return [*DERIVED, *(n for n in _filters().signal_names() if n not in DERIVED)]


def check_features(names: Sequence[str]) -> None:
    from slm_curator.errors import ConfigError

    allowed = known_features()
    for name in names:
        if name not in allowed:
            raise ConfigError(
                f"quality.model.features: {name!r} is unknown; allowed values: {', '.join(allowed)}"
            )


def document_features(text: str, names: Sequence[str] = DEFAULT_FEATURES) -> list[float]:
    signals = _filters().analyze(text or "").signals
    signals.setdefault("n_tokens", 0)
    out = []
    for name in names:
        value = DERIVED[name](signals) if name in DERIVED else float(signals.get(name, 0.0))
        out.append(min(max(value, -CLIP), CLIP) if math.isfinite(value) else 0.0)
    return out


def feature_matrix(texts: Sequence[str], names: Sequence[str] = DEFAULT_FEATURES) -> np.ndarray:
    if not names:
        return np.zeros((len(texts), 0), dtype=np.float32)
    return np.asarray([document_features(t, names) for t in texts], dtype=np.float32).reshape(
        len(texts), len(names)
    )
