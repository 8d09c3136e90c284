"""Quality scoring's pure parts: chunking, length batching, pooling, heads, metrics, the annotation parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slm_curator.errors import ConfigError
from slm_curator.quality.annotate import annotation_messages, parse_score
from slm_curator.quality.encoder import (
    EncoderSpec,
    choose_backend,
    chunk_ids,
    length_batches,
    pool_chunks,
    spread_picks,
    word_windows,
)
from slm_curator.quality.features import DEFAULT_FEATURES, document_features, feature_matrix
from slm_curator.quality.head import LinearHead, fit_logistic, fit_ordinal, fit_ridge
from slm_curator.quality.metrics import auc, confusion, spearman, to_int


def test_chunks_cover_the_whole_document_and_thin_evenly_keeping_both_ends():
    ids = list(range(1000))
    pieces = chunk_ids(ids, 100, 20)
    assert [t for p in pieces for t in p] == ids
    thinned = chunk_ids(ids, 100, 4)
    assert len(thinned) == 4
    assert thinned[0][0] == 0 and thinned[-1][-1] == 999  # first and last chunk kept
    assert chunk_ids([], 100, 4) == [[]]  # an empty document is one empty chunk (CLS/SEP only)
    assert chunk_ids(list(range(5)), 100, 1) == [list(range(5))]


def test_spread_picks_match_even_spacing_and_keep_both_ends():
    for n in range(1, 60):
        for k in range(1, 10):
            picks = spread_picks(n, k)
            assert picks == sorted(set(picks)) and len(picks) == min(n, k)
            if n > k and k > 1:
                assert picks[0] == 0 and picks[-1] == n - 1
                exact = np.arange(k) * (n - 1) / (k - 1)
                assert np.all(np.abs(np.array(picks) - exact) <= 0.5)  # the nearest index each
    # Ties round up (SQL `div` arithmetic), not to even as numpy's round would: 1.5 -> 2.
    assert (
        spread_picks(3, 3) == [0, 1, 2]
        and spread_picks(5, 3) == [0, 2, 4]
        and spread_picks(4, 3) == [0, 2, 3]
    )


def test_word_windows_split_on_ascii_whitespace_like_the_jvm_and_thin_evenly():
    text = "one two\tthree\n\nfour\u00a0five  six\r\nseven"
    # A no-break space does not separate words in Java's \\s (nor in Spark SQL's split).
    assert word_windows(text, 2, 8) == [("one two", 2), ("three four\u00a0five", 2), ("six seven", 2)]
    assert word_windows("", 2, 8) == [("", 0)] and word_windows("  \n ", 2, 8) == [("", 0)]
    long = " ".join(f"w{i}" for i in range(100))
    windows = word_windows(long, 10, 4)
    assert [w.split()[0] for w, _ in windows] == ["w0", "w30", "w60", "w90"] and windows[-1][1] == 10
    assert sum(n for _, n in word_windows(long, 7, 100)) == 100  # unthinned windows cover every word


def test_a_tokens_chunked_spec_keeps_its_stored_form_and_a_words_one_records_its_settings():
    assert set(EncoderSpec().to_dict()) == {"location", "max_tokens", "max_chunks", "pooling"}
    words = EncoderSpec(chunking="words", chunk_words=64).to_dict()
    assert words["chunking"] == "words" and words["chunk_words"] == 64
    assert EncoderSpec(**words) == EncoderSpec(chunking="words", chunk_words=64)


def test_auto_backend_is_torch_on_cuda_onnx_runtime_on_cpu_and_torch_without_it():
    assert choose_backend("auto", "auto", cuda=True, onnx=True) == ("torch", "cuda")
    assert choose_backend("auto", "auto", cuda=False, onnx=True) == ("onnx", "cpu")
    assert choose_backend("auto", "cpu", cuda=True, onnx=True) == ("onnx", "cpu")
    assert choose_backend("auto", "auto", cuda=False, onnx=False) == ("torch", "cpu")
    assert choose_backend("torch", "auto", cuda=False, onnx=True) == ("torch", "cpu")
    assert choose_backend("torch", "auto", cuda=True, onnx=True) == ("torch", "cuda")
    assert choose_backend("onnx", "auto", cuda=True, onnx=True) == ("onnx", "cpu")


def test_model_cache_falls_back_to_the_temp_dir_when_home_cannot_be_written(tmp_path, monkeypatch):
    from slm_curator.quality.encoder import _cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _cache_dir() == tmp_path / "cache" / "slm-curator" / "onnx" and _cache_dir().is_dir()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))  # a HOME no one can write under
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    assert _cache_dir().is_relative_to(tmp_path / "tmp") and _cache_dir().is_dir()


@pytest.mark.parametrize("seed", range(5))
def test_length_batches_cover_every_index_once_within_the_token_bound(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 256, size=500)
    batches = length_batches(lengths, 4096)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    for b in batches:
        assert lengths[b].max() * len(b) <= 4096 or len(b) == 1
    # Sorted by length, so padding is small: far less than batching in the given order.
    sorted_pad = sum(lengths[b].max() * len(b) for b in batches)
    naive = sum(lengths[i : i + 16].max() * len(lengths[i : i + 16]) for i in range(0, 500, 16))
    assert sorted_pad < 0.8 * naive


def test_pooling_weights_chunks_by_tokens_and_normalises():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=np.float32)
    owners = np.array([0, 0, 1])
    weights = np.array([3.0, 1.0, 2.0])
    mean = pool_chunks(vectors, owners, weights, 2, "mean")
    expected = np.array([0.75, 0.25]) / np.linalg.norm([0.75, 0.25])
    assert np.allclose(mean[0], expected)
    assert np.allclose(mean[1], [0.6, 0.8])
    assert np.allclose(pool_chunks(vectors, owners, weights, 2, "first")[0], [1.0, 0.0])
    assert np.allclose(pool_chunks(vectors, owners, weights, 2, "max")[0], np.array([1, 1]) / np.sqrt(2))


def test_ridge_recovers_a_linear_target_and_round_trips_through_json():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)) * [1, 10, 0.1, 1, 1, 1] + [0, 5, 0, 0, 0, 0]
    y = 2.5 + x @ np.array([0.5, 0.05, 3.0, 0.0, -0.3, 0.0])
    head = fit_ridge(x, y, alpha=1e-6)
    assert np.allclose(head.raw(x), y, atol=1e-6)
    again = LinearHead.from_dict(json.loads(json.dumps(head.to_dict())))
    assert np.allclose(again.raw(x), head.raw(x))
    assert head.predict(x).min() >= 0 and head.predict(x).max() <= 5  # clipped to the 0-5 scale
    # A larger penalty shrinks towards the mean.
    assert np.std(fit_ridge(x, y, alpha=1e4).raw(x)) < np.std(head.raw(x))


def test_sample_weights_change_a_ridge_fit():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.0, 1.0, 2.0, 10.0])
    plain = fit_ridge(x, y, 1e-9)
    weighted = fit_ridge(x, y, 1e-9, np.array([1.0, 1.0, 1.0, 1e-6]))
    assert np.allclose(weighted.raw(x[:3]), y[:3], atol=1e-3)
    assert not np.allclose(plain.raw(x[:3]), y[:3], atol=0.1)


def test_logistic_head_separates_and_answers_on_the_0_5_scale():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(float)
    head = fit_logistic(x, y, alpha=0.01)
    p = head.predict(x)
    assert p.min() >= 0 and p.max() <= 5
    assert auc(p, y > 0) > 0.99


def test_ordinal_head_scores_the_expected_label_and_round_trips_through_json():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    latent = 1.5 * x[:, 0] - x[:, 1] + rng.logistic(size=3000) * 0.3
    y = np.digitize(latent, [-1.5, 0.0, 1.0, 2.5]).astype(float)  # labels 0-4, none 5
    head = fit_ordinal(x, y, alpha=0.01)
    assert head.kind == "ordinal" and head.coef.shape == (4, 3) and head.base == 0.0  # step 5 unfitted
    p = head.predict(x)
    assert p.min() >= 0 and p.max() <= 4.0
    # Each step's probability is its own logistic fit; the score is their sum.
    steps = [fit_logistic(x, (y >= t).astype(float), 0.01).predict(x) / 5 for t in (1, 2, 3, 4)]
    assert np.allclose(p, np.sum(steps, axis=0), atol=1e-9)
    assert abs(p.mean() - y.mean()) < 0.05  # calibrated: the mean of expected labels is the mean label
    assert spearman(p, y) > 0.8 and auc(p, y >= 1) > 0.95 and auc(p, y >= 3) > 0.95
    again = LinearHead.from_dict(json.loads(json.dumps(head.to_dict())))
    assert np.allclose(again.predict(x), p)


def test_ordinal_head_counts_steps_every_label_reached_and_refuses_one_class():
    x = np.arange(40, dtype=float).reshape(-1, 1)
    y = np.where(x[:, 0] < 20, 2.0, 3.0)  # every label reaches 1 and 2; only step 3 varies
    head = fit_ordinal(x, y, alpha=0.01)
    assert head.base == 2.0 and head.coef.shape == (1, 1)
    assert head.predict(x[:1])[0] == pytest.approx(2.0, abs=0.05)
    assert head.predict(x[-1:])[0] == pytest.approx(3.0, abs=0.05)
    with pytest.raises(ValueError, match="both classes"):
        fit_ordinal(x, np.full(40, 2.0), alpha=0.01)
    with pytest.raises(ValueError, match="one coef row"):
        LinearHead.from_dict(head.to_dict() | {"intercept": [0.0, 1.0]})


def test_spearman_and_auc_match_their_definitions():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=200), rng.integers(0, 4, size=200)  # ties on one side
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert auc(scores, labels) == pytest.approx(0.75)
    assert auc([1, 1, 1, 1], labels) == pytest.approx(0.5)  # ties count one half
    assert np.isnan(auc(scores, [1, 1, 1, 1])) and np.isnan(spearman([1, 1], [1, 2]))


def test_confusion_and_integer_scores():
    assert to_int([-0.3, 0.49, 2.5, 3.51, 7]).tolist() == [0, 0, 2, 4, 5]
    m = confusion([0, 1, 1, 5], [0, 2, 1, 4])
    assert m.sum() == 4 and m[1, 2] == 1 and m[5, 4] == 1 and m.shape == (6, 6)


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("The extract is a tutorial on fractions.\nEducational score: 4", 4),
        ("Justification...\n\n**Educational score: 3**", 3),
        ("Some text\nEducational Score: 0.", 0),
        ("Educational score: 2/5", 2),
        ("Educational score: 5 points", 5),
        ("I would give it 3 out of 5.", None),  # no required line
        ("Educational score: 7", None),  # out of the scale
        ("Educational score: 3\nActually, on reflection it is a 2.", None),  # not the last line
        ("Educational score: three", None),
        ("", None),
        (None, None),
    ],
)
def test_annotation_parser_is_strict(answer, score):
    assert parse_score(answer) == score


def test_annotation_prompt_cuts_long_text_on_a_word_boundary():
    text = "word " * 3000
    (message,) = annotation_messages(text, 1000)
    assert "Educational score: <total points>" in message["content"]
    extract = message["content"].split("The extract:\n", 1)[1].split("\n\nAfter examining", 1)[0]
    assert len(extract) <= 1000 and extract.endswith("word")


def test_features_are_finite_and_length_moves_the_length_features():
    short = "A short note."
    long = "\n".join(["This is a complete sentence about the water cycle and rain."] * 40)
    f_short, f_long = document_features(short), document_features(long)
    assert all(np.isfinite(f_short)) and all(np.isfinite(f_long))
    i = DEFAULT_FEATURES.index("log_words")
    assert f_long[i] > f_short[i]
    assert feature_matrix(["", None, short]).shape == (3, len(DEFAULT_FEATURES))  # empty and missing text
    assert feature_matrix(["x"], []).shape == (1, 0)


def test_config_errors_name_the_key(tmp_path):
    from slm_curator.config import load_config

    with pytest.raises(ConfigError, match="quality.model.features.*allowed values"):
        load_config("local", ["quality.model.features=[no_such_feature]"])
    with pytest.raises(ConfigError, match="quality.labels.annotate.judge.base_url"):
        load_config("local", ["quality.labels.annotate.enabled=true"])
    with pytest.raises(ConfigError, match="score.backend"):
        load_config("local", ["score.backend=tensorrt"])
    with pytest.raises(ConfigError, match=r"quality.labels.imported\[0\].path"):
        load_config("local", ['quality.labels.imported=[{"name": "x"}]'])


def test_score_histogram_summary_names_the_largest_sources_and_sums_the_rest():
    from slm_curator.quality.score import format_histogram

    bins = lambda *units: [u for x in units for u in (x, 0)]  # noqa: E731 - 10 half-unit bins
    histogram = {
        "web": bins(1, 5, 2, 0, 0),
        "stories": bins(9, 0, 0, 0, 0),
        "a": bins(0, 1, 0, 0, 0),
        "b": bins(0, 0, 1, 0, 0),
    }
    assert (
        format_histogram(histogram, most=2)
        == "stories [9 0 0 0 0]; web [1 5 2 0 0]; 2 other sources [0 1 1 0 0]"
    )
