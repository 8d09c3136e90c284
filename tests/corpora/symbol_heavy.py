"""Documents of the kinds a word tokenizer gets wrong, made deterministically from real sentences.

Forum threads (imageboard and bulletin-board headers, quote links, greentext), chat logs (IRC, messenger
exports), code-heavy pages, tables, text dense with URLs, dates, times, prices and numbers, emoticons and
emoji, CJK and right-to-left scripts mixed with English. The prose in them is real (Wikipedia and
TinyStories sentences from ../shared/data); the markup around it follows each kind's conventions. Same
seed -> same documents. `documents()` -> {kind: [text, ...]}.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
KINDS = ("forum", "chat", "code", "tables", "urls_dates", "emoji", "cjk", "rtl")


def _sentences() -> list[str]:
    text = (SHARED / "prose" / "wikitext-2-valid.tokens.txt").read_text(encoding="utf-8")
    text = re.sub(r" @(.)@ ", r"\1", text).replace(" , ", ", ").replace(" . ", ". ").replace("<unk>", "thing")
    out = [s.strip() + "." for s in re.split(r"(?<=[a-z])\. ", text) if 40 < len(s) < 220 and "=" not in s]
    stories = (SHARED / "tinystories" / "valid_head.txt").read_text(encoding="utf-8")
    out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", stories) if 20 < len(s.strip()) < 200]
    return out


def _stamp(rng: random.Random) -> str:
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(10, 23):02d}"


def forum(rng, s) -> str:
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    posts, no = [], rng.randint(10**8, 10**9)
    if rng.random() < 0.5:
        for _ in range(rng.randint(6, 30)):
            no += rng.randint(1, 400)
            head = f"Anonymous {_stamp(rng)}({rng.choice(days)}){rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} No.{no}"
            if rng.random() < 0.3:
                head += f" ▶>>{no + rng.randint(1, 50)}"
            body = []
            if rng.random() < 0.5:
                body.append(f">>{no - rng.randint(1, 300)}")
            if rng.random() < 0.3:
                body.append(">" + rng.choice(s)[:60].lower())
            body += [rng.choice(s) for _ in range(rng.randint(0, 3))] or [
                rng.choice(["lol", "this", "kek", "based", "no"])
            ]
            posts.append("\n".join([head, *body]))
        return "\n".join(posts)
    user = rng.choice(["greg_77", "MarthaK", "xXdragonXx", "old.timer", "Jo-Anne"])
    for i in range(rng.randint(4, 15)):
        head = f"Re: {rng.choice(s)[:40]}\n« Reply #{i} on: March {rng.randint(1, 28)}, 20{rng.randint(5, 19):02d}, {rng.randint(1, 12)}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} {rng.choice(['AM', 'PM'])} »"
        quote = (
            f"Quote from: {user} on {_stamp(rng)}, {rng.randint(1, 12)}:{rng.randint(10, 59)} pm\n{rng.choice(s)}"
            if i and rng.random() < 0.4
            else ""
        )
        posts.append(
            "\n".join(
                x
                for x in [
                    head,
                    quote,
                    *rng.sample(s, rng.randint(1, 3)),
                    f"Posts: {rng.randint(1, 9999)} | Karma: +{rng.randint(0, 99)}/-{rng.randint(0, 9)}",
                ]
                if x
            )
        )
    return "\n\n".join(posts)


def chat(rng, s) -> str:
    nicks = ["alice", "bob_", "c4rl", "dee|away", "Eve^", "[frank]"]
    faces = [":)", ":-)", ":(", ";)", ":D", "xD", "<3", ":P", "^_^", "o_O", ":/", "lol", "brb"]
    lines = []
    for _ in range(rng.randint(15, 60)):
        words = rng.choice(s).split()
        msg = " ".join(words[: rng.randint(2, max(3, len(words)))])
        if rng.random() < 0.4:
            msg += " " + rng.choice(faces)
        if rng.random() < 0.5:
            lines.append(f"[{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}] <{rng.choice(nicks)}> {msg}")
        else:
            lines.append(
                f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/20, {rng.randint(0, 23)}:{rng.randint(10, 59)} - {rng.choice(nicks).strip('[]^|')}: {msg}"
            )
    return "\n".join(lines)


def code(rng, s) -> str:
    snippets = [
        "def area(r):\n    return 3.14159 * r ** 2  # circle\n\nprint(area(2.5))",
        "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\nreturn sum / (double) n;",
        "const user = await fetch(`/api/users/${id}`).then(r => r.json());\nif (!user?.name) throw new Error('no name');",
        "SELECT id, COUNT(*) AS n FROM orders WHERE total > 100 GROUP BY id HAVING n >= 2;",
        "$ pip install -U pandas==2.2.3 && python -m pytest -q tests/test_io.py::test_read -x",
        'x = {k: v for k, v in d.items() if v is not None}\nassert len(x) <= len(d), f"{len(x)} > {len(d)}"',
        '<div class="nav"><a href="/home">Home</a> | <a href="/about?lang=en">About</a></div>',
        'git commit -am "fix: off-by-one in parser (#1234)" && git push origin HEAD:refs/for/main',
    ]
    parts = []
    for _ in range(rng.randint(3, 8)):
        parts += [" ".join(rng.sample(s, 2)), rng.choice(snippets)]
    return "\n\n".join(parts)


def tables(rng, s) -> str:
    cols = ["Item", "Qty", "Price (USD)", "Δ%", "Date", "Code"]
    rows = [f"| {' | '.join(cols)} |", "|" + "---|" * len(cols)]
    for _ in range(rng.randint(8, 40)):
        rows.append(
            f"| {rng.choice(s).split()[0]} | {rng.randint(1, 500)} | ${rng.randint(1, 9999)}.{rng.randint(0, 99):02d} "
            f"| {rng.choice(['+', '-'])}{rng.randint(0, 40)}.{rng.randint(0, 9)}% | 20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
            f"| {rng.choice('ABCDEFGH')}-{rng.randint(100, 999)}/{rng.randint(1, 9)} |"
        )
    csv = "\n".join(
        f'{rng.randint(1, 99)},{rng.random():.4f},"{rng.choice(s)[:30]}",{rng.choice(["yes", "no", "n/a"])}'
        for _ in range(rng.randint(5, 20))
    )
    return "\n".join([rng.choice(s), *rows, "", rng.choice(s), "id,score,label,ok", csv])


def urls_dates(rng, s) -> str:
    bits = [
        lambda: (
            f"https://www.example{rng.randint(1, 99)}.com/path/to/page-{rng.randint(1, 999)}.html?id={rng.randint(1, 9999)}&ref=nav#top"
        ),
        lambda: f"www.site{rng.randint(1, 50)}.org/news/20{rng.randint(10, 24)}/{rng.randint(1, 12):02d}/",
        lambda: f"mail me at user.{rng.randint(1, 99)}@example.co.uk",
        lambda: (
            f"on {rng.randint(1, 28)}.{rng.randint(1, 12)}.20{rng.randint(10, 24)} at {rng.randint(1, 12)}:{rng.randint(10, 59)}pm"
        ),
        lambda: (
            f"({rng.randint(200, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)} ext. {rng.randint(1, 99)}"
        ),
        lambda: (
            f"€{rng.randint(1, 999)},{rng.randint(10, 99)} / US${rng.randint(1, 99)}.{rng.randint(10, 99)} (-{rng.randint(5, 60)}%)"
        ),
        lambda: (
            f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)} released 20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00Z"
        ),
        lambda: (
            f"{rng.randint(2, 40)}km / {rng.randint(1, 90)}kg / {rng.randint(1, 500)}MB / {rng.randint(1, 12)}am-{rng.randint(1, 12)}pm"
        ),
    ]
    lines = []
    for _ in range(rng.randint(6, 25)):
        words = rng.choice(s).split()
        at = rng.randint(0, len(words))
        lines.append(" ".join(words[:at] + [rng.choice(bits)()] + words[at:]))
    return "\n".join(lines)


def emoji(rng, s) -> str:
    marks = [
        "😀",
        "😂😂",
        "👍🏽",
        "❤️",
        "🔥🔥🔥",
        "✨",
        "🙏",
        "♥",
        "★★★★☆",
        "→",
        "©",
        "™",
        "#blessed",
        "@jane_doe",
        "!!!",
        "?!",
        "...",
    ]
    return "\n".join(
        " ".join(w + (" " + rng.choice(marks) if rng.random() < 0.3 else "") for w in rng.choice(s).split())
        for _ in range(rng.randint(5, 25))
    )


CJK = [
    "今天天气很好，我们一起去公园散步吧。",
    "東京の天気は晴れです。明日も晴れるでしょう。",
    "서울의 날씨는 맑습니다. 내일도 맑을 것입니다.",
    "北京大学（Peking University）成立于1898年。",
    "このページは「日本語」と English の混在テキストです。",
]
RTL = [
    "مرحبا بكم في الموقع الرسمي. اللغة العربية من أكثر اللغات انتشارا في العالم.",
    "שלום עולם! זהו טקסט בעברית עם מספרים 123 ו-English.",
    "تم التحديث في 2019/04/26 الساعة 10:30 صباحا (GMT+3).",
    "ההודעה נשלחה ב-12:45, ראו https://example.co.il/page?id=7",
]


def mixed(lines: list[str]):
    def make(rng, s) -> str:
        return "\n".join(
            rng.choice(lines) if rng.random() < 0.5 else rng.choice(s) for _ in range(rng.randint(6, 30))
        )

    return make


MAKERS = {
    "forum": forum,
    "chat": chat,
    "code": code,
    "tables": tables,
    "urls_dates": urls_dates,
    "emoji": emoji,
    "cjk": mixed(CJK),
    "rtl": mixed(RTL),
}


def documents(per_kind: int = 60, seed: int = 11) -> dict[str, list[str]]:
    s = _sentences()
    out = {}
    for kind in KINDS:
        rng = random.Random(f"{seed}-{kind}")
        out[kind] = [MAKERS[kind](rng, s) for _ in range(per_kind)]
    return out
