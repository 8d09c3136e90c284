"""One fingerprint for configs, stamps and parameters: what decides "same input, same config, nothing new"."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

LENGTH = 16


def fingerprint(value: Any, length: int = LENGTH) -> str:
    """Hex sha256 of `value` as canonical JSON (dataclasses as dicts, keys sorted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    blob = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]
