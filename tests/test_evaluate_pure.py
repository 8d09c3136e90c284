"""The pure parts of the LLM-judge evaluation: answer parsing, score weighting, statistics, corruptions."""

from __future__ import annotations

import math
import random
import re

import pytest

from slm_curator.evaluate import corrupt, pairwise, rubric, stats
from slm_curator.evaluate.rubric import CRITERIA, ParseError, parse_rubric, weighted_score

GOOD = "grammar: 8\ncreativity: 5\nconsistency: 9\nplot: 6"
STORY = (
    "Once upon a time, there was a little dog named Max. Max liked to run in the park.\n\n"
    'One day he found a red ball! "Is this mine?" he asked. His friend said, "Yes." They played all day.'
)


# --- rubric prompt and parsing ---


def test_rubric_messages_show_both_parts_and_the_answer_format():
    messages = rubric.rubric_messages("Once upon a time, Lily", " went to the park.")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "Once upon a time, Lily *** went to the park." in user
    for criterion in CRITERIA:
        assert f"\n{criterion}: <integer>" in user
    # The example in the prompt is itself a valid answer.
    example = user.split("Example of a correctly formatted answer:\n", 1)[1]
    assert set(parse_rubric(example)) == set(CRITERIA)


def test_parse_rubric_accepts_the_documented_format_and_harmless_variations():
    assert parse_rubric(GOOD) == {"grammar": 8, "creativity": 5, "consistency": 9, "plot": 6}
    varied = "\n  **Grammar**: 10 \n\n**creativity:** 1\nCONSISTENCY : **7**\n**plot: 3**\n"
    assert parse_rubric(varied) == {"grammar": 10, "creativity": 1, "consistency": 7, "plot": 3}
    reordered = "plot: 6\ngrammar: 8\nconsistency: 9\ncreativity: 5\r\n"
    assert parse_rubric(reordered) == parse_rubric(GOOD)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("grammar: 8\ncreativity: 5\nconsistency: 9", "missing plot"),
        (GOOD + "\ngrammar: 7", "grammar is given more than once"),
        (GOOD.replace("8", "11"), "not an integer from 1 to 10"),
        (GOOD.replace("8", "0"), "not an integer from 1 to 10"),
        (GOOD.replace("8", "08"), "not an integer from 1 to 10"),
        (GOOD.replace("8", "7.5"), "not an integer"),
        (GOOD.replace("8", "8/10"), "not an integer"),
        (GOOD.replace("8", "eight"), "not an integer"),
        (GOOD.replace("8", "-3"), "not an integer"),
        ("Here are my grades:\n" + GOOD, "unexpected line"),
        (GOOD + "\nOverall a lovely story.", "unexpected line"),
        (GOOD.replace("grammar: 8", "grammar: 8 (mostly correct)"), "unexpected line"),
        (GOOD.replace("grammar: 8", "- grammar: 8"), "unexpected line"),
        (GOOD.replace("grammar", "style"), "unexpected line"),
        ("", "empty answer"),
    ],
)
def test_parse_rubric_rejects_what_it_would_have_to_guess(answer, message):
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_rubric(answer)


def test_parse_error_is_a_value_error():
    assert issubclass(ParseError, ValueError)


# --- G-Eval weighted score ---


def lp(**probabilities: float) -> dict[str, float]:
    return {k: math.log(v) for k, v in probabilities.items()}


def answer_tokens(values: dict[str, list[dict[str, float]]]) -> tuple[str, list[dict[str, float]]]:
    """An answer and its per-token alternatives: "name", ":", then the given number positions, "\\n"."""
    text, tokens = "", []
    for name, positions in values.items():
        tokens += [{name: 0.0}, {":": 0.0}]
        text += f"{name}:"
        for alternatives in positions:
            written = max(alternatives, key=alternatives.get)
            tokens.append(alternatives)
            text += written
        tokens.append({"\n": 0.0})
        text += "\n"
    return text, tokens


def simple_answer(grammar_alternatives):
    values = {c: [{" 7": 0.0}] for c in CRITERIA}
    values["grammar"] = grammar_alternatives
    return answer_tokens(values)


def test_weighted_score_is_the_renormalised_expectation():
    text, tokens = simple_answer([{" 8": math.log(0.6), " 7": math.log(0.2), " great": math.log(0.1)}])
    assert parse_rubric(text)["grammar"] == 8
    assert weighted_score(tokens, text, "grammar") == pytest.approx((8 * 0.6 + 7 * 0.2) / 0.8)
    assert weighted_score(tokens, text, "plot") == pytest.approx(7.0)


def test_weighted_score_merges_spacing_variants_and_counts_one_token_ten_as_ten():
    text, tokens = simple_answer([lp(**{" 10": 0.5, "10": 0.1, " 9": 0.2, " 1": 0.1})])
    assert weighted_score(tokens, text, "grammar") == pytest.approx((10 * 0.6 + 9 * 0.2 + 1 * 0.1) / 0.9)


def test_weighted_score_splits_a_written_one_by_what_followed_it():
    # Digit-splitting tokeniser writing "10" as "1" + "0": P(10) = P("1") * P("0" | "1").
    first = lp(**{"1": 0.55, "9": 0.45})
    following = lp(**{"0": 0.8, "\n": 0.1, "5": 0.1})  # "15" is out of range and dropped
    values = {c: [{"7": 0.0}] for c in CRITERIA}
    values["grammar"] = [first, following]
    text, tokens = answer_tokens(values)
    assert parse_rubric(text)["grammar"] == 10
    expected = (10 * 0.55 * 0.8 + 1 * 0.55 * 0.1 + 9 * 0.45) / (0.55 * 0.8 + 0.55 * 0.1 + 0.45)
    assert weighted_score(tokens, text, "grammar") == pytest.approx(expected)


def test_weighted_score_counts_an_unwritten_one_as_one():
    text, tokens = simple_answer([lp(**{" 9": 0.6, " 1": 0.4})])
    assert weighted_score(tokens, text, "grammar") == pytest.approx(9 * 0.6 + 1 * 0.4)


def test_weighted_score_backtracks_when_alternatives_overlap():
    # " 10" matches where the text has " 10", but only " 1" + "0\n" reproduces the rest of the tokens.
    text = "grammar: 10\ncreativity: 5\nconsistency: 5\nplot: 5"
    tokens = [{"grammar": 0.0}, {":": 0.0}, lp(**{" 1": 0.6, " 10": 0.4}), lp(**{"0\n": 0.9, "x": 0.1})]
    tokens += [{t: 0.0} for t in ["creativity", ": 5", "\n", "consistency", ": 5", "\n", "plot", ":", " 5"]]
    # " 10" counts 0.4 for 10; the written " 1" splits into 0.6 * 0.9 for 10 and 0.6 * 0.1 for 1.
    assert weighted_score(tokens, text, "grammar") == pytest.approx(10 * 0.94 + 1 * 0.06)
    # The number shares a token with the colon: no position holds only the number.
    assert weighted_score(tokens, text, "creativity") is None
    assert weighted_score(tokens, text, "plot") == pytest.approx(5.0)


def test_weighted_score_is_none_without_usable_logprobs():
    text, tokens = simple_answer([{" 8": 0.0}])
    assert weighted_score(tokens, text, "grammar") == pytest.approx(8.0)
    assert weighted_score(None, text, "grammar") is None
    assert weighted_score([], text, "grammar") is None
    assert weighted_score(tokens, text, "style") is None
    assert weighted_score(tokens, "I would say 8.\n" + text, "grammar") is None  # does not parse
    assert weighted_score(tokens, text + " ", "grammar") is None  # tokens do not reproduce the text
    assert weighted_score(tokens[:-1], text, "grammar") is None
    # The written token is missing from its position's alternatives (a server sent only others).
    missing = [*tokens[:2], {" 7": 0.0}, *tokens[3:]]
    assert weighted_score(missing, text, "grammar") is None


# --- pairwise ---


def test_pairwise_messages_and_choice_parsing():
    messages = pairwise.pairwise_messages("Once upon a time", " first one.", " second one.")
    user = messages[1]["content"]
    assert user.index("first one.") < user.index("second one.")
    assert "exactly one letter, A or B" in user
    assert [pairwise.parse_choice(t) for t in ("A", " b\n", "**B**", "a")] == ["A", "B", "B", "A"]
    for bad in ("", "C", "A or B", "A.", "Answer: A", "AB", None):
        with pytest.raises(ParseError):
            pairwise.parse_choice(bad)


@pytest.mark.parametrize(
    ("first", "second", "verdict"),
    [
        ("A", "B", "x"),
        ("B", "A", "y"),
        ("A", "A", "tie"),
        ("B", "B", "tie"),
        (None, "B", "tie"),
        ("A", None, "tie"),
        (None, None, "tie"),
    ],
)
def test_combine_orders_truth_table(first, second, verdict):
    assert pairwise.combine_orders(first, second) == verdict


def test_combine_orders_rejects_unparsed_answers():
    with pytest.raises(ValueError):
        pairwise.combine_orders("a", "B")


# --- statistics ---


def test_wilson_interval_known_values():
    assert stats.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = stats.wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert stats.wilson_interval(2.5, 5) == pytest.approx((0.1704, 0.8296), abs=1e-4)  # ties as halves
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


def test_mean_interval():
    assert stats.mean_interval([4.0]) == (4.0, 4.0, 4.0)
    mean, low, high = stats.mean_interval([1, 2, 3, 4])
    assert mean == 2.5 and (low, high) == pytest.approx((2.5 - 2.0543, 2.5 + 2.0543), abs=1e-3)
    assert stats.mean_interval([7, 7, 7]) == (7.0, 7.0, 7.0)
    with pytest.raises(ValueError):
        stats.mean_interval([])


def test_win_rates_counts_each_ordered_pair():
    verdicts = [("x", "y", "a"), ("y", "x", "a"), ("x", "y", "tie"), ("x", "y", "a"), ("x", "z", "b")]
    rates = stats.win_rates(verdicts).set_index(["model_a", "model_b"])
    assert rates.loc[("x", "y")].to_dict() == {
        "wins": 2,
        "losses": 1,
        "ties": 1,
        "games": 4,
        "win_rate": 0.625,
    }
    assert rates.loc[("y", "x"), "wins"] == 1 and rates.loc[("y", "x"), "win_rate"] == 0.375
    assert rates.loc[("z", "x"), "win_rate"] == 1.0 and rates.loc[("x", "z"), "losses"] == 1
    assert len(rates) == 4
    assert stats.win_rates([]).empty
    with pytest.raises(ValueError):
        stats.win_rates([("x", "y", "draw")])


STRENGTHS = {"big": 1200.0, "medium": 1100.0, "small": 1000.0, "tiny": 800.0}


def synthetic_verdicts(count: int, seed: int) -> list[tuple[str, str, str]]:
    """Verdicts drawn from a Bradley-Terry model with the ratings in STRENGTHS."""
    rng = random.Random(seed)
    names = list(STRENGTHS)
    out = []
    for _ in range(count):
        a, b = rng.sample(names, 2)
        p_a = 1 / (1 + 10 ** ((STRENGTHS[b] - STRENGTHS[a]) / 400))
        out.append((a, b, "a" if rng.random() < p_a else "b"))
    return out


def test_bradley_terry_recovers_order_and_gaps():
    ratings = stats.bradley_terry(synthetic_verdicts(4000, seed=0))
    assert sorted(ratings, key=ratings.get, reverse=True) == list(STRENGTHS)
    assert sum(ratings.values()) / len(ratings) == pytest.approx(1000.0)
    for name, strength in STRENGTHS.items():
        gap = ratings[name] - ratings["small"]
        assert gap == pytest.approx(strength - STRENGTHS["small"], abs=40), name


def test_bradley_terry_ties_and_symmetry():
    ratings = stats.bradley_terry([("x", "y", "tie")] * 10 + [("x", "y", "a"), ("y", "x", "a")])
    assert ratings == pytest.approx({"x": 1000.0, "y": 1000.0})
    assert stats.bradley_terry([], models=["x", "y"]) == pytest.approx({"x": 1000.0, "y": 1000.0})
    assert stats.bradley_terry([("x", "y", "a")], models=["x", "y", "z"])["z"] == pytest.approx(1000.0)
    assert stats.bradley_terry([]) == {}
    with pytest.raises(ValueError):
        stats.bradley_terry([("x", "w", "a")], models=["x", "y"])


def test_bradley_terry_stays_finite_for_a_perfect_winner():
    verdicts = [("champ", "other", "a")] * 200 + [("other", "third", "a"), ("third", "other", "a")] * 20
    ratings = stats.bradley_terry(verdicts)
    assert all(math.isfinite(r) for r in ratings.values())
    assert ratings["champ"] > ratings["other"] + 400 and ratings["third"] > ratings["other"] - 50
    # Two models: the virtual tie makes it 10000.5 wins to 0.5, a finite log-odds gap the fit reaches.
    two = stats.bradley_terry([("champ", "other", "a")] * 10_000)
    assert two["champ"] - two["other"] == pytest.approx(400 * math.log10(10_000.5 / 0.5), abs=0.01)


def test_bootstrap_ratings_contain_the_estimate_and_repeat_for_a_seed():
    verdicts = synthetic_verdicts(600, seed=1)
    boot = stats.bootstrap_ratings(verdicts, n_boot=300, seed=7)
    assert list(boot.columns) == ["model", "rating", "low", "high"]
    assert list(boot["model"]) == list(STRENGTHS)
    assert (boot["low"] < boot["rating"]).all() and (boot["rating"] < boot["high"]).all()
    point = stats.bradley_terry(verdicts)
    assert dict(zip(boot["model"], boot["rating"], strict=True)) == pytest.approx(point)
    assert boot.equals(stats.bootstrap_ratings(verdicts, n_boot=300, seed=7))
    assert not boot.equals(stats.bootstrap_ratings(verdicts, n_boot=300, seed=8))


# --- corruptions ---

CUTTABLE = [STORY, "The cat sat on the mat. It was warm.", "a b c", "One long line without an end"]


@pytest.mark.parametrize("kind", corrupt.CORRUPTIONS)
@pytest.mark.parametrize("seed", range(5))
def test_each_corruption_changes_the_text_and_repeats_for_a_seed(kind, seed):
    for text in [STORY, "The cat sat on the mat. It was warm.", "Tom ran. Sue hid. Bo won."]:
        changed = corrupt.corrupt(text, kind, random.Random(seed))
        assert changed != text
        assert changed == corrupt.corrupt(text, kind, random.Random(seed))


def test_shuffle_keeps_the_sentences():
    shuffled = corrupt.shuffle_sentences(STORY, random.Random(0))
    for sentence in ["Max liked to run in the park.", '"Is this mine?" he asked.', 'His friend said, "Yes."']:
        assert sentence in shuffled
    assert sorted(shuffled.split()) == sorted(STORY.split())
    with pytest.raises(corrupt.CannotCorrupt):
        corrupt.shuffle_sentences("Hi there. Hi there.", random.Random(0))


@pytest.mark.parametrize("seed", range(20))
def test_truncate_ends_mid_sentence(seed):
    for text in CUTTABLE:
        cut = corrupt.truncate_mid_sentence(text, random.Random(seed))
        assert text.startswith(cut) and len(cut) < len(text.rstrip())
        assert not re.search(r"[.!?…][\"'”’)]*\s*$", cut)
        # What was cut off continues the same sentence: more words before the next sentence end.
        assert re.match(r"[ \t]+[^\s]", text[len(cut) :])
    with pytest.raises(corrupt.CannotCorrupt):
        corrupt.truncate_mid_sentence("Hello. Bye.", random.Random(0))


def test_drop_words_removes_a_fraction_and_keeps_order():
    text = " ".join(f"w{i}" for i in range(20))
    dropped = corrupt.drop_words(text, random.Random(3), fraction=0.3).split()
    assert len(dropped) == 14
    assert dropped == [w for w in text.split() if w in dropped]
    assert len(corrupt.drop_words("two words", random.Random(0)).split()) == 1
    with pytest.raises(corrupt.CannotCorrupt):
        corrupt.drop_words("one", random.Random(0))


def test_repeat_lines_loops_one_sentence():
    text = "The cat sat on the mat. It was warm."
    looped = corrupt.repeat_lines(text, random.Random(2))
    repeated = [s for s in ("The cat sat on the mat.", "It was warm.") if looped.count(s) >= 3]
    assert len(repeated) == 1
    assert looped.replace(f" {repeated[0]}", "", looped.count(repeated[0]) - 1) == text
    with pytest.raises(corrupt.CannotCorrupt):
        corrupt.repeat_lines("   ", random.Random(0))


def test_corrupt_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt.corrupt(STORY, "reverse", random.Random(0))
