"""LLM annotation with FineWeb-Edu's additive 0-5 prompt (Penedo et al. 2024), and its strict parser.

The prompt awards one point per criterion met, so the integer means the same thing whichever model
answers; the answer must end with "Educational score: <points>". An answer without exactly that is
kept as unparseable (no score), counted, and never guessed from stray digits.
"""

from __future__ import annotations

import re

PROMPT_VERSION = "fineweb-edu-additive-v1"

PROMPT = """Below is an extract from a web page. Evaluate whether the page has a high educational value \
and could be useful in an educational setting for teaching from primary school to grade school levels \
using the additive 5-point scoring system described below. Points are accumulated based on the \
satisfaction of each criterion:

- Add 1 point if the extract provides some basic information relevant to educational topics, even if \
it includes some irrelevant or non-academic content like advertisements and promotional material.
- Add another point if the extract addresses certain elements pertinent to education but does not \
align closely with educational standards. It might mix educational content with non-educational \
material, offering a superficial overview of potentially useful topics, or presenting information in \
a disorganized manner and incoherent writing style.
- Award a third point if the extract is appropriate for educational use and introduces key concepts \
relevant to school curricula. It is coherent though it may not be comprehensive or could include some \
extraneous information. It may resemble an introductory section of a textbook or a basic tutorial \
that is suitable for learning but has notable limitations like treating concepts that are too complex \
for grade school students.
- Grant a fourth point if the extract is highly relevant and beneficial for educational purposes for a \
level not higher than grade school, exhibiting a clear and consistent writing style. It could be \
similar to a chapter from a textbook or a tutorial, offering substantial educational content, \
including exercises and solutions, with minimal irrelevant information, and the concepts aren't too \
advanced for grade school students. The content is coherent, focused, and valuable for structured \
learning.
- Bestow a fifth point if the extract is outstanding in its educational value, perfectly suited for \
teaching either at primary school or grade school. It follows detailed reasoning, the writing style is \
easy to follow and offers profound and thorough insights into the subject matter, devoid of any \
non-educational or complex content.

The extract:
{text}

After examining the extract:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Educational score: <total points>\""""

_SCORE = re.compile(r"educational score:\s*\**\s*([0-5])\s*\**\s*(?:/\s*5|points?)?\s*\.?\s*$", re.IGNORECASE)


def annotation_messages(text: str, max_chars: int) -> list[dict[str, str]]:
    """The chat request for one document, its text cut at `max_chars` on a word boundary."""
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars]
    return [{"role": "user", "content": PROMPT.format(text=text)}]


def parse_score(answer: str | None) -> int | None:
    """The 0-5 score of an answer's last line "Educational score: N", else None."""
    if not answer:
        return None
    lines = [ln.strip() for ln in answer.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    match = _SCORE.search(lines[-1])
    return int(match.group(1)) if match else None
