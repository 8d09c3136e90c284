"""What a filter family is: a config, the signals it reads off a parsed document, the reasons it drops for.

A family is one module holding its config dataclass and one `Family` object, listed once in
`filters.registry`. Everything else is derived from that object: the config section
(`filter.<name>`), the columns of the filter UDF's `signals` struct, and the gate's expectations on
those signals and on the drop-reason vocabulary. Signals are always kept (an analyst re-thresholds
them later); `rules` turn them into snake_case drop reasons, as data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

from slm_curator.text import native


@dataclass
class Document:
    """One document parsed once for every family: lines, each line's tokens, the document's tokens.

    Families run in registry order and may publish what later ones read: C4 sets `text_clean`,
    language ID sets `language` and `language_score` (which the bad-words list depends on).
    """

    text: str
    lines: list[str]
    line_tokens: list[list[str]]
    tokens: list[str]
    text_clean: str
    language: str = "unknown"
    language_score: float = 0.0
    # The kernels families call (`text.native.Engine`: compiled, or the Python reference).
    engine: Any = field(default_factory=lambda: native.engine("python"))


@dataclass(frozen=True)
class Signal:
    """A signal's name and the range any document's value lies in (None: unbounded)."""

    name: str
    low: float | None = 0.0
    high: float | None = None


class Rule(NamedTuple):
    """`reason` when `signal` is below (`min`) or above (`max`) `limit`; `only_if`: only when that signal is non-zero."""

    reason: str
    signal: str
    bound: Literal["min", "max"]
    limit: float
    only_if: str = ""


def violations(signals: dict[str, float], rules: list[Rule]) -> list[str]:
    """Reasons whose signal is below its `min` or above its `max` limit, in rule order."""
    out = []
    for reason, key, bound, limit, only_if in rules:
        if only_if and not signals[only_if]:
            continue
        value = signals[key]
        if (bound == "max" and value > limit) or (bound == "min" and value < limit):
            out.append(reason)
    return out


class Family(ABC):
    """A filter family. Subclasses set `name` and `config` and implement `signals` and `compute`."""

    name: ClassVar[str]  # config key under filter., and the prefix of its signals and reasons
    config: ClassVar[type]  # its config dataclass (with an `enabled` field)

    @abstractmethod
    def signals(self, cfg: Any) -> list[Signal]:
        """Every signal `compute` returns under `cfg`, in order."""

    def rules(self, cfg: Any) -> list[Rule]:
        """Threshold rules over the signals."""
        return []

    def extra_reasons(self, cfg: Any) -> list[str]:
        """Reasons `decide` can give beyond the rules'."""
        return []

    def reasons(self, cfg: Any) -> list[str]:
        """The vocabulary: every drop reason this family can give under `cfg`."""
        return list(dict.fromkeys([*(r.reason for r in self.rules(cfg)), *self.extra_reasons(cfg)]))

    def check(self, cfg: Any) -> None:
        """Raise ConfigError for values the types allow but the family cannot use (naming the key)."""
        return None

    @abstractmethod
    def compute(self, doc: Document, cfg: Any) -> dict[str, float]:
        """This family's signals of one document (and what it publishes on `doc`)."""

    def decide(self, signals: dict[str, float], doc: Document, cfg: Any, rules: list[Rule]) -> list[str]:
        """Drop reasons from this document's signals (`rules` is `self.rules(cfg)`, built once)."""
        return violations(signals, rules)
