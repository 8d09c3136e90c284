"""A decoder-only GPT in the Llama style: RMSNorm, rotary positions, grouped-query attention, SwiGLU.

The layout follows nanoGPT's model.py (one short class per idea, GPT-2 initialisation, the same
forward contract), with the architectural choices of current small models (SmolLM, Llama) so a
TinyStories-sized run and a SmolLM-135M-sized run are the same code at different presets.

Nothing in `forward` branches on tensor values, so the model traces cleanly under `torch.compile`
and runs under bf16 autocast: norms, rotary angles and the loss are computed in fp32 where it matters.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# SwiGLU hidden sizes are rounded up to this so the matmuls land on tensor-core-friendly shapes.
FFN_MULTIPLE_OF = 64


@dataclass
class ModelConfig:
    """Shape of the network; validated on construction so a bad size fails before any allocation."""

    vocab_size: int
    block_size: int  # longest context the model sees; rotary tables are precomputed up to it
    n_layer: int
    n_head: int
    n_kv_head: int  # key/value heads; each is shared by n_head // n_kv_head query heads (GQA)
    n_embd: int
    ffn_hidden: int = 0  # 0: ceil(8/3 * n_embd) rounded up to FFN_MULTIPLE_OF, see `ffn_dim`
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if isinstance(self.ffn_hidden, bool) or not isinstance(self.ffn_hidden, int) or self.ffn_hidden < 0:
            raise ValueError(
                f"ModelConfig.ffn_hidden must be an int >= 0 (0 = SwiGLU default), got {self.ffn_hidden!r}"
            )
        if self.n_embd % self.n_head:
            raise ValueError(
                f"ModelConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"ModelConfig.n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head}); "
                f"allowed: {[d for d in range(1, self.n_head + 1) if self.n_head % d == 0]}"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"ModelConfig head_dim = n_embd / n_head = {self.head_dim} must be even for rotary "
                f"embeddings; change n_embd ({self.n_embd}) or n_head ({self.n_head})"
            )
        if not self.rope_theta > 0:
            raise ValueError(f"ModelConfig.rope_theta must be > 0, got {self.rope_theta!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"ModelConfig.norm_eps must be > 0, got {self.norm_eps!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def ffn_dim(self) -> int:
        """SwiGLU width. The 8/3 default gives three matrices the parameters of GPT-2's two 4x ones."""
        if self.ffn_hidden:
            return self.ffn_hidden
        hidden = -(-8 * self.n_embd // 3)
        return -(-hidden // FFN_MULTIPLE_OF) * FFN_MULTIPLE_OF


# Named sizes. Counts are total unique parameters with tied embeddings at the listed vocab size;
# a run normally overrides vocab_size with its tokenizer's.
PRESETS: dict[str, dict] = {
    # ~1.1M: a smoke-test model that still learns TinyStories-style text.
    "tiny-1m": dict(
        vocab_size=4096, block_size=256, n_layer=4, n_head=4, n_kv_head=2, n_embd=128, ffn_hidden=256
    ),
    # ~8.5M: TinyStories-8M width and depth.
    "ts-8m": dict(vocab_size=8192, block_size=512, n_layer=8, n_head=8, n_kv_head=8, n_embd=256),
    # ~34.6M: TinyStories-33M's shape (4 wide layers), 64-dim heads.
    "ts-33m": dict(vocab_size=8192, block_size=512, n_layer=4, n_head=12, n_kv_head=12, n_embd=768),
    # ~123.6M: GPT-2 small (no learned positions; SwiGLU at 2048 matches its 4x GELU MLP in size).
    "gpt2-small": dict(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_kv_head=12, n_embd=768),
    # ~134.5M: SmolLM-135M.
    "smollm-135m": dict(
        vocab_size=49152,
        block_size=2048,
        n_layer=30,
        n_head=9,
        n_kv_head=3,
        n_embd=576,
        ffn_hidden=1536,
        rope_theta=10000.0,
    ),
}


def model_config(preset: str, **overrides) -> ModelConfig:
    """A preset's config with fields replaced, e.g. `model_config("ts-8m", vocab_size=tok.vocab_size)`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; allowed: {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown ModelConfig field(s) {unknown}; allowed: {sorted(fields)}")
    return ModelConfig(**{**PRESETS[preset], **overrides})


class RMSNorm(nn.Module):
    """LayerNorm without centring or bias: cheaper and as stable, as in Llama and SmolLM."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for every position up to block_size, built once.

    The buffers are not persistent: they are a function of the config, so checkpoints stay portable
    across block sizes and never carry stale tables.
    """

    def __init__(self, head_dim: int, max_seq_len: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)  # (T, head_dim/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[:seq_len], self.sin[:seq_len]


def apply_rotary_emb(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, D) by position so q·k depends on the offset between positions, not on either.

    Uses the "rotate half" pairing (dimension i with i + D/2) of GPT-NeoX and Hugging Face Llama, so
    weights from those checkpoints load without permuting q/k. Computed in fp32: angles at long
    positions lose too much in bf16.
    """
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return rotated.type_as(x)


class Attention(nn.Module):
    """Causal self-attention where groups of query heads share one key/value head.

    Fewer k/v heads shrink the k/v projections (and a generation cache) with little loss in quality;
    with n_kv_head == n_head it is ordinary multi-head attention and uses the plain SDPA kernels.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        self.kv_dim = config.n_kv_head * config.head_dim
        self.qkv = nn.Linear(config.n_embd, config.n_embd + 2 * self.kv_dim, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split([C, self.kv_dim, self.kv_dim], dim=-1)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)
        # enable_gqa lets query head h read k/v head h // (n_head // n_kv_head) without copying k/v.
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
            enable_gqa=self.n_kv_head != self.n_head,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class SwiGLU(nn.Module):
    """Gated MLP, silu(x W_gate) * (x W_up) W_down; gate and up are one matmul for throughput."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_up = nn.Linear(config.n_embd, 2 * config.ffn_dim, bias=False)
        self.down = nn.Linear(config.ffn_dim, config.n_embd, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.drop(self.down(F.silu(gate) * up))


class Block(nn.Module):
    """Pre-norm residual block: the residual stream is never normalised, which keeps deep stacks stable."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    """Token embedding, n_layer blocks, final norm and a language-model head (tied by default)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.rope = RotaryEmbedding(config.head_dim, config.block_size, config.rope_theta)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            # One matrix reads and writes tokens (Press & Wolf 2017): at these sizes the vocabulary
            # matrix is 20-50% of the model, and sharing it costs no quality. One Parameter, two modules.
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2: each block adds two projections to the residual stream; scaling their init by
        # 1/sqrt(2 * n_layer) keeps the stream's variance independent of depth at init.
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.down):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) token ids -> (logits, loss).

        With targets: logits (B, T, V) and the mean cross-entropy over targets != -1. Without: only the
        last position's logits (B, 1, V), which is all generation needs, and loss None.
        """
        seq_len = idx.size(1)
        if seq_len > self.config.block_size:
            raise ValueError(f"sequence length {seq_len} exceeds block_size {self.config.block_size}")
        cos, sin = self.rope(seq_len)
        x = self.drop(self.wte(idx))
        for block in self.blocks:
            x = block(x, cos, sin)
        x = self.norm(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    def num_params(self, non_embedding: bool = False) -> int:
        """Unique parameters (a tied matrix counts once).

        non_embedding=True leaves out the vocabulary matrices (token embedding and lm_head, tied or
        not): Kaplan et al.'s N, the count that scaling laws and model names at this size refer to.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel()
            if not self.config.tie_embeddings:
                n -= self.lm_head.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs (forward + backward) per token at context seq_len, for MFU.

        PaLM's estimate (Chowdhery et al. 2022, app. B), as nanoGPT's estimate_mfu uses it:
        6 * N for the weight matmuls (2 forward, 4 backward per weight) plus 12 * n_layer * n_embd *
        seq_len for the attention scores and the weighted sum of values, counted over the full T x T
        even though causal kernels skip half. N is the non-embedding count plus the lm_head
        (vocab_size * n_embd): the embedding lookup costs no FLOPs but the output projection is a
        real matmul. With tied embeddings N is exactly nanoGPT's count for GPT-2.
        """
        c = self.config
        n = self.num_params(non_embedding=True) + c.vocab_size * c.n_embd
        return 6.0 * n + 12.0 * c.n_layer * c.n_embd * seq_len

    def optimizer(
        self, weight_decay: float, lr: float, betas: tuple[float, float], device_type: str
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices (embedding included) only.

        Norm gains are 1-D scales: decaying them just shrinks activations the next layer must rescale.
        fused=True on CUDA runs the whole update in a few kernels instead of one per tensor.
        """
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == "cuda")
