"""Write spaCy's English tokenizer rules to lib/slm_curator/text/spacy_en_tokenizer.json.

The filter heuristics were defined on spaCy's tokens (datatrove splits words with spaCy's blank English
pipeline), so how many words "DON'T", "could've", ":-)", "99¢" or "xª." are decides alpha ratios and
n-gram shares. spaCy's rules are data: a special-case table (contractions, abbreviations, emoticons,
clock times; ~1,300 entries), the prefix, suffix and infix patterns built from its character classes
(which letters count as lower case, which symbols as icons, which currencies and units exist), and the
URL pattern. Rewriting them by hand drifted from spaCy (upper-case contractions split, newer emoji and
scripts classed differently), so they are exported from spaCy itself (MIT License, Copyright (C)
2016-2024 ExplosionAI GmbH, 2016 spaCy GmbH, 2015 Matthew Honnibal) and shipped as data; the package
does not import spaCy, and `slm_curator.text.tokenize` applies spaCy's algorithm to them.
tests/test_tokenizer_rules.py checks the file against the installed spaCy, so a spaCy release that changes
the rules fails CI until this script is re-run.

    .venv/bin/python scripts/export_spacy_tokenizer.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "lib" / "slm_curator" / "text" / "spacy_en_tokenizer.json"


def rules() -> dict:
    """spaCy's English tokenizer rules: patterns as spaCy joins them, special cases orth -> token texts
    (whitespace cases left out: the tokenizer never sees whitespace)."""
    import spacy
    from spacy.symbols import ORTH

    nlp = spacy.blank("en")
    tokenizer = nlp.tokenizer
    return {
        "source": f"spaCy {spacy.__version__}, spacy.blank('en').tokenizer",
        "license": "MIT License, Copyright (C) 2016-2024 ExplosionAI GmbH, 2016 spaCy GmbH, 2015 Matthew Honnibal",
        "prefixes": [p for p in nlp.Defaults.prefixes if p.strip()],
        "suffixes": [s for s in nlp.Defaults.suffixes if s.strip()],
        "infixes": list(nlp.Defaults.infixes),
        "url_match": tokenizer.url_match.__self__.pattern,
        "special_cases": {
            k: [piece[ORTH] for piece in v] for k, v in sorted(tokenizer.rules.items()) if not k.isspace()
        },
    }


def main() -> None:
    payload = rules()
    cases = payload.pop("special_cases")
    head = json.dumps(payload, ensure_ascii=False, indent=1)[:-2]  # one special case a line: readable diffs
    body = ",\n".join(
        f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in cases.items()
    )
    OUT.write_text(f'{head},\n "special_cases": {{\n{body}\n }}\n}}\n', encoding="utf-8")
    print(
        f"{OUT}: {len(cases)} special cases, {len(payload['prefixes'])} prefixes, "
        f"{len(payload['suffixes'])} suffixes, {len(payload['infixes'])} infixes from {payload['source']}"
    )


if __name__ == "__main__":
    main()
