"""The embedded sample corpus: a small, deterministic, real-looking crawl for the default run.

It exists so a fresh clone has something to curate without any download. It mixes what web crawls
contain and what each stage must handle: articles wrapped in navigation and cookie boilerplate,
calendar and menu pages, lorem ipsum, code, exact and near duplicates, German/French/Spanish pages,
short children's stories, a WARC with HTML and non-HTML payloads, and deliberately broken records.
Same seed and size -> byte-identical files.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

TOPICS = {
    "gardening": (
        [
            "tomato plants",
            "raised beds",
            "compost",
            "seedlings",
            "the soil",
            "heirloom beans",
            "mulch",
            "rainwater",
        ],
        ["need", "benefit from", "protect", "improve", "feed", "shade", "support", "attract"],
        ["in early spring", "after the last frost", "during dry weeks", "on cool mornings", "every season"],
    ),
    "astronomy": (
        [
            "the moon",
            "a small telescope",
            "Jupiter",
            "the Milky Way",
            "meteor showers",
            "binoculars",
            "dark skies",
        ],
        ["reveal", "reflect", "outshine", "guide", "frame", "illuminate", "hide"],
        ["just after sunset", "on clear nights", "far from city lights", "in late summer", "before dawn"],
    ),
    "cooking": (
        [
            "fresh bread",
            "a slow stew",
            "the dough",
            "roasted vegetables",
            "the sauce",
            "cast iron pans",
            "spices",
        ],
        ["improve", "balance", "need", "brighten", "thicken", "deepen", "complement"],
        ["over low heat", "the night before", "in a hot oven", "with patience", "at the last minute"],
    ),
    "history": (
        [
            "the old harbour",
            "medieval guilds",
            "the printing press",
            "railway towns",
            "the city archive",
            "trade routes",
        ],
        ["shaped", "connected", "recorded", "transformed", "preserved", "replaced"],
        [
            "in the nineteenth century",
            "for centuries",
            "after the war",
            "during the industrial age",
            "across Europe",
        ],
    ),
    "programming": (
        [
            "unit tests",
            "a hash map",
            "the compiler",
            "version control",
            "a code review",
            "the database index",
        ],
        ["catch", "speed up", "simplify", "document", "protect", "reveal"],
        [
            "before every release",
            "in large projects",
            "at scale",
            "under heavy load",
            "from the first commit",
        ],
    ),
    "health": (
        [
            "regular walks",
            "a good night's sleep",
            "fresh vegetables",
            "drinking water",
            "stretching",
            "sunlight",
        ],
        ["support", "improve", "restore", "strengthen", "calm", "protect"],
        ["every day", "over several weeks", "in older adults", "after exercise", "throughout the year"],
    ),
}

# Sentence templates: {A}/{a} and {b} are topic nouns, {v} a verb, {t} a time phrase. An article uses
# each template at most once, so its repetition statistics look like prose, not like a template.
TEMPLATES = [
    "{A} can {v} {b} {t}.",
    "In practice, {a} tends to {v} {b}, especially {t}.",
    "Most experienced readers agree that {a} matters more than people expect.",
    "It is worth remembering that {a} rarely works alone.",
    "The simplest advice is to start with {a} and observe the results {t}.",
    "Researchers have studied {a} for many years, and the findings are consistent.",
    "Many beginners overlook {a}, yet it is often the deciding factor.",
    "When you look closely at {a}, you notice how it can {v} {b}.",
    "A neighbour once told me that {a} would {v} {b} {t}, and she was right.",
    "There is no single rule here; {a} and {b} behave differently {t}.",
    "Few guides mention it, but {b} depends on {a} more than on anything else.",
    "If {a} fails to {v} {b}, try again {t} with a smaller change.",
    "Our notes from last year show {a} beginning to {v} {b} {t}.",
    "Why does {a} {v} {b}? The short answer is patience.",
    "Experts still debate whether {a} should {v} {b} at all.",
    "One surprising detail: {b} improved after we paid attention to {a}.",
    "Keep a small notebook and record how {a} changes {t}.",
    "Nobody expects {b} to be perfect, but {a} helps a great deal.",
    "The history of {a} is longer than most people assume.",
    "Compared with {b}, {a} asks for less time and more care.",
]

NAV = ["Home", "About", "Blog", "Shop", "Contact", "Login", "Register", "Search", "Categories", "Archives"]
FOOTERS = [
    "Copyright © {year} {site}. All rights reserved.",
    "This website uses cookies to improve your experience. Accept cookies | Privacy policy",
    "Share this: Facebook Twitter Pinterest Email",
    "Subscribe to our newsletter for weekly updates!",
    "Please enable JavaScript to view the comments.",
]

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip "
    "ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
    "fugiat nulla pariatur."
)

CODE = [
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "function debounce(fn, ms) {\n  let t;\n  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };\n}\n",
    "SELECT customer_id, SUM(amount) AS total\nFROM orders\nGROUP BY customer_id\nHAVING SUM(amount) > 100;\n",
    "public static int max(int[] xs) {\n    int m = Integer.MIN_VALUE;\n    for (int x : xs) { if (x > m) m = x; }\n    return m;\n}\n",
]

FOREIGN = {
    "de": [
        "Der Garten braucht im Frühling viel Wasser und etwas Geduld.",
        "Unsere Stadt hat eine lange Geschichte, die bis ins Mittelalter zurückreicht.",
        "Frisches Brot schmeckt am besten, wenn man es am Morgen backt.",
        "Die Kinder spielen nach der Schule gern im Park neben dem Fluss.",
        "Viele Menschen fahren im Sommer mit dem Fahrrad zur Arbeit.",
        "Das Museum zeigt in diesem Jahr eine Ausstellung über alte Karten.",
    ],
    "fr": [
        "Le jardin a besoin de beaucoup d'eau au printemps et d'un peu de patience.",
        "Notre ville possède une longue histoire qui remonte au Moyen Âge.",
        "Le pain frais est meilleur lorsqu'on le prépare le matin.",
        "Les enfants aiment jouer dans le parc après l'école.",
        "Beaucoup de gens prennent le vélo pour aller au travail en été.",
        "Le musée présente cette année une exposition sur les cartes anciennes.",
    ],
    "es": [
        "El jardín necesita mucha agua en primavera y un poco de paciencia.",
        "Nuestra ciudad tiene una larga historia que se remonta a la Edad Media.",
        "El pan fresco sabe mejor cuando se hornea por la mañana.",
        "A los niños les gusta jugar en el parque después de la escuela.",
        "Mucha gente va en bicicleta al trabajo durante el verano.",
        "El museo presenta este año una exposición sobre mapas antiguos.",
    ],
}

STORY_NAMES = ["Lily", "Tom", "Mia", "Ben", "Sara", "Max", "Anna", "Leo", "Zoe", "Sam"]
STORY_THINGS = [
    "a red ball",
    "a tiny kite",
    "a shiny shell",
    "a lost puppy",
    "a big box",
    "a blue bird",
    "an old map",
]
STORY_PLACES = ["the park", "the garden", "the beach", "the forest", "the kitchen", "the school yard"]
STORY_FEELINGS = ["happy", "sad", "curious", "scared", "proud", "surprised"]


def _fill(template: str, rng: random.Random, topic: str) -> str:
    nouns, verbs, times = TOPICS[topic]
    a, b = rng.sample(nouns, 2)
    return template.format(A=a[0].upper() + a[1:], a=a, b=b, v=rng.choice(verbs), t=rng.choice(times))


def _paragraph(rng: random.Random, topic: str, sentences: int) -> str:
    return " ".join(_fill(t, rng, topic) for t in rng.sample(TEMPLATES, sentences))


def _article(rng: random.Random, topic: str) -> str:
    title = f"{rng.choice(['A practical guide to', 'Notes on', 'What we learned about', 'Understanding'])} {topic}"
    order = rng.sample(TEMPLATES, rng.randint(8, len(TEMPLATES)))
    cuts = sorted(rng.sample(range(1, len(order)), rng.randint(2, 4)))
    parts = [order[i:j] for i, j in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    paragraphs = [" ".join(_fill(t, rng, topic) for t in part) for part in parts]
    return "\n\n".join([title, *paragraphs])


def _boilerplate(rng: random.Random, body: str, site: str) -> str:
    nav = " | ".join(rng.sample(NAV, rng.randint(4, 8)))
    foot = "\n".join(
        f.format(year=2019 + rng.randrange(6), site=site) for f in rng.sample(FOOTERS, rng.randint(1, 4))
    )
    return f"{nav}\nMenu\n{body}\n{foot}"


def _calendar(rng: random.Random) -> str:
    month = rng.choice(["January", "March", "May", "July", "September", "November"])
    days = "\n".join(" ".join(str(d) for d in range(w * 7 + 1, min(w * 7 + 8, 31))) for w in range(5))
    events = "\n".join(f"{rng.randint(1, 30)} {month} - Event" for _ in range(rng.randint(2, 6)))
    return f"{month} {2020 + rng.randrange(5)}\nMon Tue Wed Thu Fri Sat Sun\n{days}\n{events}\n« Previous | Next »"


def _menu(rng: random.Random) -> str:
    items = rng.sample(
        ["Pizza", "Pasta", "Salad", "Soup", "Burger", "Fries", "Cake", "Coffee", "Tea", "Juice"], 6
    )
    return "Our Menu\n" + "\n".join(
        f"{i} ........ ${rng.randint(3, 20)}.{rng.choice(['00', '50', '95'])}" for i in items
    )


def _code_page(rng: random.Random) -> str:
    snippet = rng.choice(CODE)
    return f"How to solve it\nHere is a short snippet that does the job:\n{snippet}\nHope this helps! Reply below."


def _foreign(rng: random.Random, lang: str) -> str:
    sents = FOREIGN[lang]
    return "\n\n".join(" ".join(rng.sample(sents, rng.randint(3, 5))) for _ in range(rng.randint(2, 4)))


def _near_duplicate(rng: random.Random, text: str, edits: int) -> str:
    words = text.split(" ")
    for _ in range(edits):
        i = rng.randrange(len(words))
        op = rng.randrange(3)
        if op == 0 and len(words) > 10:
            del words[i]
        elif op == 1:
            words.insert(i, rng.choice(["really", "often", "truly", "also", "quite"]))
        else:
            words[i] = rng.choice(["garden", "window", "morning", "river", "table"])
    return " ".join(words)


def story(rng: random.Random) -> str:
    name, friend = rng.sample(STORY_NAMES, 2)
    thing, place = rng.choice(STORY_THINGS), rng.choice(STORY_PLACES)
    feel, feel2 = rng.sample(STORY_FEELINGS, 2)
    lines = [
        f"Once upon a time, there was a little child named {name}.",
        f"One day, {name} went to {place} and found {thing}.",
        f"{name} felt {feel} and wanted to show it to {friend}.",
        f'{friend} said, "Wow, can we play with it together?"',
        f"They played all afternoon until the sun went down, and {name} felt {feel2}.",
        f"From that day on, {name} and {friend} were the best of friends.",
    ]
    return " ".join(lines)


def _web_documents(rng: random.Random, n: int) -> list[dict]:
    docs: list[dict] = []
    topics = sorted(TOPICS)
    base = datetime(2024, 1, 1)
    for i in range(n):
        site = f"www.{rng.choice(['daily', 'green', 'open', 'city', 'smart'])}{rng.choice(['notes', 'times', 'hub', 'post'])}.example"
        kind = rng.random()
        lang = "en"
        if kind < 0.55:
            text = (
                _boilerplate(rng, _article(rng, rng.choice(topics)), site)
                if rng.random() < 0.7
                else _article(rng, rng.choice(topics))
            )
        elif kind < 0.62:
            text = _calendar(rng)
        elif kind < 0.67:
            text = _menu(rng)
        elif kind < 0.71:
            text = LOREM + "\n\n" + LOREM
        elif kind < 0.76:
            text = _code_page(rng)
        elif kind < 0.86:
            lang = rng.choice(sorted(FOREIGN))
            text = _foreign(rng, lang)
        elif docs and kind < 0.93:
            text = rng.choice(docs)["text"]  # exact duplicate, another URL
        elif docs:
            text = _near_duplicate(rng, rng.choice(docs)["text"], rng.randint(1, 4))
        else:
            text = _article(rng, topics[0])
        docs.append(
            {
                "id": f"web-{i:06d}",
                "url": f"https://{site}/{i}",
                "text": text,
                "crawl_date": (base + timedelta(minutes=37 * i)).isoformat() + "Z",
                "language_hint": lang,
            }
        )
    return docs


def _warc_record(headers: dict[str, str], block: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(block)}\r\n\r\n"
    return gzip.compress(head.encode() + block + b"\r\n\r\n", mtime=0)


def _warc(rng: random.Random, pages: int) -> bytes:
    out = io.BytesIO()
    date = "2024-03-01T00:00:00Z"
    info = b"software: slm-curator sample corpus\r\nformat: WARC File Format 1.0\r\n"
    out.write(
        _warc_record(
            {
                "WARC-Type": "warcinfo",
                "WARC-Record-ID": "<urn:uuid:00000000-0000-0000-0000-000000000000>",
                "WARC-Date": date,
                "Content-Type": "application/warc-fields",
            },
            info,
        )
    )
    topics = sorted(TOPICS)
    for i in range(pages):
        url = f"https://blog{i % 7}.example/post/{i}"
        rid = f"<urn:uuid:{i + 1:08d}-0000-4000-8000-000000000000>"
        if i % 50 == 7:
            body, ctype, status = (
                b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(64)),
                "image/png",
                "200 OK",
            )
        elif i % 50 == 23:
            body, ctype, status = (
                b"<html><body><h1>Not Found</h1></body></html>",
                "text/html",
                "404 Not Found",
            )
        else:
            topic = rng.choice(topics)
            paras = "".join(
                f"<p>{_paragraph(rng, topic, rng.randint(3, 6))}</p>" for _ in range(rng.randint(3, 7))
            )
            nav = "".join(f"<li><a href='/{n.lower()}'>{n}</a></li>" for n in rng.sample(NAV, 5))
            html = (
                f"<html><head><title>{topic.title()} notes</title></head><body><nav><ul>{nav}</ul></nav>"
                f"<main><article><h1>{topic.title()} notes</h1>{paras}</article></main>"
                f"<footer>Copyright 2024. All rights reserved. <a href='/privacy'>Privacy policy</a></footer></body></html>"
            )
            body, ctype, status = html.encode(), "text/html; charset=utf-8", "200 OK"
        http = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        out.write(
            _warc_record(
                {
                    "WARC-Type": "request",
                    "WARC-Record-ID": f"<urn:uuid:{i + 1:08d}-1111-4000-8000-000000000000>",
                    "WARC-Date": date,
                    "WARC-Target-URI": url,
                    "Content-Type": "application/http; msgtype=request",
                },
                f"GET /post/{i} HTTP/1.1\r\nHost: blog{i % 7}.example\r\n\r\n".encode(),
            )
        )
        out.write(
            _warc_record(
                {
                    "WARC-Type": "response",
                    "WARC-Record-ID": rid,
                    "WARC-Date": date,
                    "WARC-Target-URI": url,
                    "Content-Type": "application/http; msgtype=response",
                },
                http,
            )
        )
    return out.getvalue()


def _broken_lines(rng: random.Random) -> list[bytes]:
    good = json.dumps({"id": "ok-1", "text": story(rng)}).encode()
    return [
        b'{"id": "bad-1", "text": "unterminated string}',
        b'["an", "array", "is", "not", "a", "document"]',
        json.dumps({"id": "bad-3", "title": "no text field here"}).encode(),
        json.dumps({"id": "bad-4", "text": "   \n  "}).encode(),
        b'{"id": "bad-5", "text": "caf\xe9 au lait is not UTF-8 here"}',
        json.dumps({"id": "bad-6", "text": 12345}).encode(),
        good,
        good,  # the same id twice: the second copy is quarantined as duplicate_id
        b"{not json at all",
    ]


def write_sample_corpus(folder: str | Path, documents: int = 3000, seed: int = 1234) -> Path:
    """Write the corpus into `folder` (created); returns it. Sizes scale with `documents`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    n_web = int(documents * 0.6)
    n_stories = int(documents * 0.2)
    n_warc = int(documents * 0.12)
    n_parquet = int(documents * 0.05)
    n_text = min(40, max(3, documents // 75))

    web = _web_documents(rng, n_web)
    with gzip.GzipFile(folder / "web_pages.jsonl.gz", "wb", mtime=0) as fh:
        for doc in web:
            fh.write(json.dumps(doc, ensure_ascii=False).encode() + b"\n")

    with open(folder / "stories.jsonl", "wb") as fh:
        for i in range(n_stories):
            fh.write(json.dumps({"id": f"story-{i:05d}", "text": story(rng)}).encode() + b"\n")

    (folder / "crawl.warc.gz").write_bytes(_warc(rng, n_warc))

    import pyarrow as pa
    import pyarrow.parquet as pq

    topics = sorted(TOPICS)
    rows = [
        {
            "id": f"tb-{i:05d}",
            "text": _article(rng, topics[i % len(topics)]),
            "subject": topics[i % len(topics)],
        }
        for i in range(n_parquet)
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "textbook.parquet")

    notes = folder / "notes"
    notes.mkdir(exist_ok=True)
    for i in range(n_text):
        (notes / f"note_{i:03d}.txt").write_text(_article(rng, topics[i % len(topics)]) + "\n")

    with open(folder / "broken.jsonl", "wb") as fh:
        fh.write(b"\n".join(_broken_lines(rng)) + b"\n")
    return folder
