"""Story beginnings for evaluation: held-out documents cut in two, or a prompt file.

Held-out documents come from the export's validation split, which shares no duplicate cluster with
training, so a model is never asked to continue a story it memorised. The rest of each story is kept as
the reference continuation: the judge sanity check compares it with corrupted copies of itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    beginning: str
    reference: str  # the real continuation ("" when a prompt file gives only beginnings)


def split_story(text: str, words: int) -> tuple[str, str] | None:
    """(first `words` words, the rest) cut at a word boundary; None when too little is left to continue."""
    parts = text.split()
    if len(parts) < words + 8:
        return None
    return " ".join(parts[:words]), " " + " ".join(parts[words:])


def documents_from_rows(rows: np.ndarray, eos_id: int) -> list[np.ndarray]:
    """Whole documents from packed rows: the token stream split on EOS, minus the last piece.

    A shard starts at a document boundary; its tail is cut where the last full row ends.
    """
    stream = np.asarray(rows).reshape(-1)
    cuts = np.concatenate([[-1], np.flatnonzero(stream == eos_id)])
    return [stream[a + 1 : b] for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a + 1]


def held_out_prompts(folder: Path, manifest: dict, count: int, words: int) -> list[Prompt]:
    """The first `count` usable held-out stories of an export, in shard order (itself a seeded shuffle)."""
    from tokenizers import Tokenizer

    from slm_curator.export.shard_format import open_shard

    names = manifest["splits"].get("val") or []
    if not names:
        raise FileNotFoundError(
            f"evaluate.prompts_file: empty and the export in {folder} has no validation split "
            "(export.val_fraction = 0); give a prompt file"
        )
    tok = Tokenizer.from_file(str(folder / manifest["tokenizer"]))
    out: list[Prompt] = []
    for name in names:
        _, rows = open_shard(folder / name)
        for doc in documents_from_rows(rows, manifest["eos_id"]):
            cut = split_story(tok.decode(doc.tolist()), words)
            if cut:
                out.append(Prompt(_prompt_id(cut[0]), *cut))
            if len(out) == count:
                return out
    return out


def file_prompts(path: str, count: int, words: int) -> list[Prompt]:
    """JSONL ({"prompt": beginning} or {"text": whole story}) or text (blank-line separated stories)."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"evaluate.prompts_file: {path} does not exist")
    raw = source.read_text(encoding="utf-8")
    out: list[Prompt] = []
    if source.suffix in (".jsonl", ".json"):
        for line in raw.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("prompt"):
                out.append(
                    Prompt(_prompt_id(record["prompt"]), record["prompt"], record.get("reference", ""))
                )
            elif record.get("text") and (cut := split_story(record["text"], words)):
                out.append(Prompt(_prompt_id(cut[0]), *cut))
            if len(out) == count:
                break
    else:
        for block in raw.split("\n\n"):
            if (cut := split_story(block.strip(), words)) and len(out) < count:
                out.append(Prompt(_prompt_id(cut[0]), *cut))
    return out


def _prompt_id(beginning: str) -> str:
    return hashlib.sha256(beginning.encode()).hexdigest()[:16]
