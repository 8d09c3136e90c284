"""Write datatrove's punctuation set to lib/slm_curator/filters/gopher_punctuation.json.

Gopher's quality rules count "words" that are not symbols: datatrove, the reference implementation the
filter stage is held to, calls a word a symbol when every character of it is in its PUNCTUATION_SET
(ASCII punctuation, control characters, a list of CJK and Unicode sentence-final marks). Emoji, "£",
"©" or "→" are therefore words there, and count towards the 50-word minimum and the mean word length.
The set is data, exported from datatrove itself (Apache License 2.0, Copyright The HuggingFace Team)
and shipped with the package, which does not import datatrove; tests/test_filters_vs_datatrove.py
checks the file against the installed datatrove.

    .venv/bin/python scripts/export_datatrove_punctuation.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "lib" / "slm_curator" / "filters" / "gopher_punctuation.json"


def punctuation() -> dict:
    from importlib.metadata import version

    from datatrove.utils.text import PUNCTUATION_SET

    return {
        "source": f"datatrove {version('datatrove')}, datatrove.utils.text.PUNCTUATION_SET",
        "license": "Apache License 2.0, Copyright The HuggingFace Team",
        "code_points": sorted(ord(c) for c in PUNCTUATION_SET),
    }


def main() -> None:
    payload = punctuation()
    points = ", ".join(map(str, payload["code_points"]))
    head = json.dumps({k: v for k, v in payload.items() if k != "code_points"}, indent=1)[:-2]
    OUT.write_text(f'{head},\n "code_points": [{points}]\n}}\n', encoding="utf-8")
    print(f"{OUT}: {len(payload['code_points'])} characters from {payload['source']}")


if __name__ == "__main__":
    main()
