"""Language identification with lingua: its models ship inside the PyPI wheel, so nothing downloads.

The detector is built once per process (it is the expensive part) and reads only the head of each
document: a few thousand characters decide the language as well as the whole page does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from slm_curator.errors import ConfigError
from slm_curator.filters.family import Document, Family, Rule, Signal


@dataclass
class LanguageConfig:
    """Language ID with lingua (models ship inside the PyPI wheel: no download at run time)."""

    enabled: bool = True
    # ISO 639-1 codes to keep; empty keeps every language.
    keep: list[str] = field(default_factory=lambda: ["en"])
    # Lowest detector confidence to trust a language.
    min_confidence: float = 0.65
    # Languages lingua chooses among (fewer is faster and more accurate on short texts).
    candidates: list[str] = field(
        default_factory=lambda: [
            "en",
            "de",
            "fr",
            "es",
            "it",
            "pt",
            "nl",
            "ru",
            "zh",
            "ja",
            "ar",
            "pl",
            "sv",
            "tr",
        ]
    )
    # Characters of each document the detector reads. The head bounds the cost: on the shared web sample
    # the first 1000 characters give the whole document's language for 98.7% of documents (99.1% for
    # the en / not-en decision) at 1.7x the speed of 2000 characters.
    max_chars: int = 1000
    # lingua's trigram-only mode: no faster than high accuracy on 1000 characters, and less accurate.
    low_accuracy: bool = False


@lru_cache(maxsize=4)
def _detector(candidates: tuple[str, ...], low_accuracy: bool):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = []
    for code in candidates:
        try:
            languages.append(Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())))
        except (AttributeError, ValueError) as exc:
            raise ConfigError(
                f"filter.language.candidates: {code!r} is not an ISO 639-1 code lingua knows"
            ) from exc
    builder = (
        LanguageDetectorBuilder.from_languages(*languages)
        if len(languages) > 1
        else LanguageDetectorBuilder.from_all_languages()
    )
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    # Load every model now: lazy loading would bill the first document of each language.
    return builder.with_preloaded_language_models().build()


def detect(text: str, cfg: LanguageConfig) -> tuple[str, float]:
    """(ISO 639-1 code, confidence in [0, 1]); ('unknown', 0.0) when nothing is detectable."""
    head = text[: cfg.max_chars]
    if not head.strip():
        return "unknown", 0.0
    values = _detector(tuple(cfg.candidates), cfg.low_accuracy).compute_language_confidence_values(head)
    if not values or values[0].value <= 0:
        return "unknown", 0.0
    top = values[0]
    return top.language.iso_code_639_1.name.lower(), float(top.value)


def reasons(lang: str, confidence: float, cfg: LanguageConfig) -> list[str]:
    if not cfg.keep:
        return []
    if lang not in cfg.keep:
        return ["language_not_kept"]
    if confidence < cfg.min_confidence:
        return ["language_low_confidence"]
    return []


class Language(Family):
    """Sets the document's `language` and `language_score` (output columns, not signals)."""

    name = "language"
    config = LanguageConfig

    def signals(self, cfg: LanguageConfig) -> list[Signal]:
        return []

    def extra_reasons(self, cfg: LanguageConfig) -> list[str]:
        return ["language_not_kept", "language_low_confidence"] if cfg.keep else []

    def compute(self, doc: Document, cfg: LanguageConfig) -> dict[str, float]:
        doc.language, doc.language_score = detect(doc.text, cfg)
        return {}

    def decide(
        self, signals: dict[str, float], doc: Document, cfg: LanguageConfig, rules: list[Rule]
    ) -> list[str]:
        return reasons(doc.language, doc.language_score, cfg)


FAMILY = Language()
