"""GPT model and sampling: sizes, causality, GQA, RoPE, init, training signal, optimizer, decoding."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from slm_curator.train.generate import filter_logits, generate
from slm_curator.train.model import (
    GPT,
    PRESETS,
    ModelConfig,
    RotaryEmbedding,
    apply_rotary_emb,
    model_config,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These matrices are tiny: one thread is fastest, and it doesn't stall when Spark tests share the CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**overrides) -> ModelConfig:
    base = dict(vocab_size=64, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32)
    return ModelConfig(**{**base, **overrides})


def small_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(small_config(**overrides))


def all_logits(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    logits, _ = model(idx, torch.zeros_like(idx))
    return logits


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("preset", "low", "high"),
    [
        ("tiny-1m", 0.8e6, 1.3e6),
        ("ts-8m", 7e6, 10e6),
        ("ts-33m", 30e6, 38e6),
        ("gpt2-small", 120e6, 130e6),
        ("smollm-135m", 130e6, 140e6),
    ],
)
def test_preset_parameter_counts(preset, low, high):
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = GPT(model_config(preset))
    assert low <= model.num_params() <= high


def test_smollm_preset_matches_published_shape():
    cfg = model_config("smollm-135m")
    with torch.device("meta"):
        model = GPT(cfg)
    # SmolLM-135M reports 134,515,008 parameters (tied embeddings).
    assert model.num_params() == 134_515_008
    assert (cfg.head_dim, cfg.ffn_dim, cfg.n_head // cfg.n_kv_head) == (64, 1536, 3)


def test_default_ffn_width_keeps_gpt2_mlp_size_and_rounds_up():
    assert (
        small_config(n_embd=768, n_head=12, n_kv_head=12).ffn_dim == 2048
    )  # 3 * 768 * 2048 == 2 * 768 * 3072
    assert small_config(n_embd=128).ffn_dim == 384  # ceil(341.3) rounded up to a multiple of 64
    assert small_config(ffn_hidden=100).ffn_dim == 100


def test_num_params_counts_tied_weights_once_and_excludes_vocab_matrices():
    cfg = small_config()
    tied, untied = GPT(cfg), GPT(dataclasses.replace(cfg, tie_embeddings=False))
    vocab_matrix = cfg.vocab_size * cfg.n_embd
    assert untied.num_params() - tied.num_params() == vocab_matrix
    assert tied.num_params(non_embedding=True) == tied.num_params() - vocab_matrix
    assert untied.num_params(non_embedding=True) == tied.num_params(non_embedding=True)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(vocab_size=0), "vocab_size"),
        (dict(n_layer=2.0), "n_layer"),
        (dict(n_embd=30), "n_embd"),  # 30 % 4 heads
        (dict(n_kv_head=3), "n_kv_head"),
        (dict(n_embd=12, n_head=4, n_kv_head=4), "head_dim"),  # odd head_dim: no RoPE pairs
        (dict(ffn_hidden=-1), "ffn_hidden"),
        (dict(rope_theta=0.0), "rope_theta"),
        (dict(norm_eps=0.0), "norm_eps"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        small_config(**overrides)


def test_model_config_applies_overrides_and_rejects_unknown_names():
    cfg = model_config("tiny-1m", vocab_size=2048, dropout=0.1)
    assert (cfg.vocab_size, cfg.dropout, cfg.n_embd) == (2048, 0.1, PRESETS["tiny-1m"]["n_embd"])
    with pytest.raises(ValueError, match="gpt2-small"):
        model_config("gpt3")
    with pytest.raises(ValueError, match="n_layers"):
        model_config("tiny-1m", n_layers=3)


# ---------------------------------------------------------------------------------------------- model


def test_forward_shapes_and_last_position_logits():
    model = small_model().eval()
    idx = torch.randint(0, 64, (3, 10))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 10, 64) and loss.ndim == 0
    last, no_loss = model(idx)
    assert last.shape == (3, 1, 64) and no_loss is None
    torch.testing.assert_close(last[:, 0], logits[:, -1])
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_loss_ignores_minus_one_targets():
    model = small_model().eval()
    idx = torch.randint(0, 64, (2, 8))
    targets = idx.clone()
    targets[:, 4:] = -1
    logits, loss = model(idx, targets)
    expected = torch.nn.functional.cross_entropy(logits[:, :4].reshape(-1, 64), idx[:, :4].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_causality_future_tokens_do_not_change_past_logits():
    model = small_model().eval()
    idx = torch.randint(0, 64, (2, 16))
    before = all_logits(model, idx)
    for t in (0, 7, 15):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 64
        after = all_logits(model, changed)
        torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(after[:, t], before[:, t])


def test_gqa_equals_multi_head_attention_with_duplicated_kv_heads():
    gqa = small_model(n_head=4, n_kv_head=2).eval()
    mha = GPT(dataclasses.replace(gqa.config, n_kv_head=4)).eval()
    cfg, group = gqa.config, gqa.config.n_head // gqa.config.n_kv_head
    state = gqa.state_dict()
    for i in range(cfg.n_layer):
        key = f"blocks.{i}.attn.qkv.weight"
        kv_dim = cfg.n_kv_head * cfg.head_dim
        q, k, v = state[key].split([cfg.n_embd, kv_dim, kv_dim], dim=0)

        def per_query_head(w):
            # kv head j serves query heads j * group ... (j + 1) * group - 1
            return (
                w.view(cfg.n_kv_head, cfg.head_dim, cfg.n_embd).repeat_interleave(group, dim=0).flatten(0, 1)
            )

        state[key] = torch.cat([q, per_query_head(k), per_query_head(v)])
    mha.load_state_dict(state)
    idx = torch.randint(0, 64, (2, 20))
    torch.testing.assert_close(all_logits(mha, idx), all_logits(gqa, idx), rtol=1e-5, atol=1e-5)


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    head_dim = 16
    rope = RotaryEmbedding(head_dim, max_seq_len=64, theta=10000.0)
    cos, sin = rope(64)
    q, k = torch.randn(head_dim), torch.randn(head_dim)

    def score(m: int, n: int) -> torch.Tensor:
        qm = apply_rotary_emb(q.view(1, 1, 1, -1), cos[m : m + 1], sin[m : m + 1])
        kn = apply_rotary_emb(k.view(1, 1, 1, -1), cos[n : n + 1], sin[n : n + 1])
        return (qm * kn).sum()

    for offset in (0, 3, 11):
        ref = score(offset, 0)
        for start in (1, 17, 50):
            torch.testing.assert_close(score(start + offset, start), ref, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(score(3, 0), score(11, 0))
    # a rotation: norms are kept, position 0 is the identity
    rotated = apply_rotary_emb(q.view(1, 1, 1, -1), cos[40:41], sin[40:41])
    torch.testing.assert_close(rotated.norm(), q.norm())
    torch.testing.assert_close(apply_rotary_emb(q.view(1, 1, 1, -1), cos[:1], sin[:1]).flatten(), q)


def test_rope_tables_are_not_saved_in_checkpoints():
    model = small_model()
    assert not any("rope" in key for key in model.state_dict())


def test_tied_embeddings_share_storage():
    tied = small_model()
    assert tied.lm_head.weight is tied.wte.weight
    assert tied.lm_head.weight.data_ptr() == tied.wte.weight.data_ptr()
    untied = small_model(tie_embeddings=False)
    assert untied.lm_head.weight.data_ptr() != untied.wte.weight.data_ptr()


def test_init_std_and_residual_projection_scaling():
    model = small_model(n_embd=128, n_head=4, n_kv_head=4, n_layer=8, vocab_size=512)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    expected = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.attn.proj.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.mlp.down.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert torch.equal(model.norm.weight, torch.ones(128))


def test_loss_at_init_is_close_to_uniform():
    torch.manual_seed(0)
    model = GPT(model_config("tiny-1m", block_size=64)).eval()
    idx, targets = torch.randint(0, 4096, (2, 4, 64))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(4096)) < 0.3


def test_tiny_model_overfits_one_batch():
    model = small_model(n_embd=64, n_head=4, n_kv_head=2)
    batch = torch.randint(0, 64, (4, 33), generator=torch.Generator().manual_seed(1))
    x, y = batch[:, :-1], batch[:, 1:]
    opt = model.optimizer(weight_decay=0.0, lr=1e-2, betas=(0.9, 0.95), device_type="cpu")
    first = None
    for _ in range(100):
        _, loss = model(x, y)
        first = loss.item() if first is None else first
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert first > 3.5 and loss.item() < 0.1


def test_dropout_only_in_training_mode():
    model = small_model(dropout=0.5)
    idx = torch.randint(0, 64, (2, 8))
    model.train()
    assert not torch.equal(all_logits(model, idx), all_logits(model, idx))
    model.eval()
    torch.testing.assert_close(all_logits(model, idx), all_logits(model, idx), rtol=0, atol=0)


def test_flops_per_token_matches_a_manual_count():
    cfg = small_config(n_embd=64, n_head=4, n_kv_head=2, n_layer=3, vocab_size=100, ffn_hidden=96)
    model = GPT(cfg)
    kv = cfg.n_kv_head * cfg.head_dim
    per_layer = 64 * (64 + 2 * kv) + 64 * 64 + 3 * 64 * 96  # qkv, out proj, gate+up, down
    norms = 3 * 2 * 64 + 64
    matmul_weights = 3 * per_layer + norms + 100 * 64  # the lm_head counts; the embedding lookup is free
    attention = 2 * 2 * 64 * 20 * 3  # QK^T and AV: 2 FLOPs per MAC, n_embd * T each, per layer
    assert model.flops_per_token(20) == 6 * matmul_weights + 3 * attention
    # nanoGPT's estimate for tied GPT-2: 6 * num_params + 12 * L * C * T
    assert model.flops_per_token(20) == 6 * model.num_params() + 12 * 3 * 64 * 20
    untied = GPT(dataclasses.replace(cfg, tie_embeddings=False))
    assert untied.flops_per_token(20) == model.flops_per_token(20)


def test_optimizer_decays_matrices_only():
    model = small_model()
    opt = model.optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    norms = {id(m.weight) for m in model.modules() if type(m).__name__ == "RMSNorm"}
    assert norms == {id(p) for p in no_decay["params"]}
    assert any(p is model.wte.weight for p in decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == model.num_params()
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["betas"] == (0.9, 0.95)
    assert not opt.defaults["fused"]


# ---------------------------------------------------------------------------------------------- sampling


def logits_of(probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs).log().unsqueeze(0)


def kept(logits: torch.Tensor) -> list[int]:
    return torch.isfinite(logits[0]).nonzero().flatten().tolist()


def test_filter_logits_top_k():
    logits = logits_of([0.1, 0.4, 0.2, 0.3])
    assert kept(filter_logits(logits, top_k=1)) == [1]
    assert kept(filter_logits(logits, top_k=2)) == [1, 3]
    assert kept(filter_logits(logits, top_k=0)) == kept(filter_logits(logits, top_k=None)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits, top_k=10)) == [0, 1, 2, 3]
    probs = filter_logits(logits, top_k=2).softmax(-1)
    torch.testing.assert_close(probs, torch.tensor([[0.0, 4 / 7, 0.0, 3 / 7]]))


def test_filter_logits_top_p_keeps_smallest_set_reaching_p():
    logits = logits_of([0.05, 0.5, 0.15, 0.3])  # ranked: 1 (0.5), 3 (0.8), 2 (0.95), 0 (1.0)
    assert kept(filter_logits(logits, top_p=0.45)) == [1]
    assert kept(filter_logits(logits, top_p=0.55)) == [1, 3]
    assert kept(filter_logits(logits, top_p=0.9)) == [1, 2, 3]
    assert kept(filter_logits(logits, top_p=0.97)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits, top_p=1.0)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits_of([0.97, 0.01, 0.01, 0.01]), top_p=1e-6)) == [0]  # at least one
    # per row, and after top-k: the nucleus is measured in the truncated distribution
    rows = torch.cat([logits, logits_of([0.3, 0.3, 0.35, 0.05])])
    assert kept(filter_logits(rows, top_p=0.5)[1:]) == [0, 2]
    assert kept(filter_logits(logits, top_p=0.6)) == [1, 3]
    assert kept(filter_logits(logits, top_k=2, top_p=0.6)) == [1]  # 0.5 / 0.8 = 0.625 >= 0.6
    assert kept(filter_logits(logits, top_k=2, top_p=0.7)) == [1, 3]


def test_filter_logits_temperature_and_argument_checks():
    logits = logits_of([0.1, 0.6, 0.3])
    torch.testing.assert_close(filter_logits(logits, temperature=2.0), logits / 2)
    # a lower temperature sharpens the distribution, so fewer tokens reach the same nucleus
    assert kept(filter_logits(logits, temperature=0.3, top_p=0.8)) == [1]
    assert kept(filter_logits(logits, temperature=1.0, top_p=0.8)) == [1, 2]
    with pytest.raises(ValueError, match="temperature"):
        filter_logits(logits, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=0.0)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(logits, top_k=-1)


def test_generate_is_deterministic_for_a_seeded_generator():
    model = small_model()
    prompt = torch.randint(0, 64, (3, 5))
    a = generate(model, prompt, 12, top_k=20, top_p=0.9, generator=torch.Generator().manual_seed(7))
    b = generate(model, prompt, 12, top_k=20, top_p=0.9, generator=torch.Generator().manual_seed(7))
    c = generate(model, prompt, 12, top_k=20, top_p=0.9, generator=torch.Generator().manual_seed(8))
    assert a.shape == (3, 17) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, :5], prompt)


def test_greedy_generation_is_stepwise_argmax_and_crops_to_block_size():
    model = small_model().eval()
    prompt = torch.randint(0, 64, (2, 28))
    out = generate(model, prompt, 10, temperature=0.0)  # runs past block_size 32
    assert out.shape == (2, 38)
    for t in range(28, 38):
        context = out[:, max(0, t - 32) : t]
        torch.testing.assert_close(out[:, t], model(context)[0][:, -1].argmax(-1), rtol=0, atol=0)


class ScriptedLM(torch.nn.Module):
    """Emits script[row][step] with certainty and records the context lengths it was given."""

    def __init__(self, script: list[list[int]], vocab_size: int = 10, block_size: int = 6):
        super().__init__()
        self.config = small_config(vocab_size=vocab_size, block_size=block_size)
        self.script, self.seen = torch.tensor(script), []

    def forward(self, idx, targets=None):
        self.seen.append(idx.size(1))
        step = len(self.seen) - 1
        return torch.nn.functional.one_hot(self.script[:, step], self.config.vocab_size)[:, None] * 50.0, None


def test_generate_pads_finished_rows_with_eos_and_stops_when_all_finish():
    eos = 9
    # row 0 ends at step 1, row 1 at step 3; the script keeps producing tokens after that
    lm = ScriptedLM([[1, eos, 2, 3, 4, 5], [6, 7, 8, eos, 1, 2]])
    prompt = torch.tensor([[eos, 0], [0, 0]])  # eos in the prompt does not finish a row
    out = generate(lm, prompt, 6, eos_id=eos, generator=torch.Generator().manual_seed(0))
    assert out.tolist() == [[eos, 0, 1, eos, eos, eos], [0, 0, 6, 7, 8, eos]]
    assert len(lm.seen) == 4  # stopped early instead of running all 6 steps
    # without eos_id every step runs, and the context is cropped to block_size 6
    lm = ScriptedLM([[1, eos, 2, 3, 4, 5], [6, 7, 8, eos, 1, 2]])
    out = generate(lm, prompt, 6, temperature=0.0)
    assert out[:, 2:].tolist() == lm.script.tolist()
    assert lm.seen == [2, 3, 4, 5, 6, 6]


def test_generate_with_eos_matches_plain_generation_until_eos():
    model = small_model().eval()
    prompt = torch.randint(0, 64, (2, 4), generator=torch.Generator().manual_seed(3))
    plain = generate(model, prompt, 8, temperature=0.0)
    eos = int(plain[0, 6])  # row 0's third new token
    out = generate(model, prompt, 8, temperature=0.0, eos_id=eos)
    first = 4 + int((plain[0, 4:] == eos).nonzero()[0])
    assert torch.equal(out[0, : first + 1], plain[0, : first + 1]) and (out[0, first:] == eos).all()
    assert torch.equal(out[1], plain[1, : out.size(1)])


def test_generate_restores_training_mode_and_allows_zero_tokens():
    model = small_model().train()
    prompt = torch.randint(0, 64, (1, 3))
    assert torch.equal(generate(model, prompt, 0), prompt)
    generate(model, prompt, 2)
    assert model.training
    model.eval()
    generate(model, prompt, 2)
    assert not model.training
    with pytest.raises(ValueError, match="idx"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 2)
