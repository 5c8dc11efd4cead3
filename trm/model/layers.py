"""Building blocks of the TRM network (trm-spec section 2).

Every weight is stored in float32 and cast to the activations' dtype at use, so one set of
weights serves a float32 or a bfloat16 forward pass on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from trm.backends import Backend
from trm.config import ModelConfig


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, bound: float = 2.0) -> torch.Tensor:
    """Truncated normal at +-`bound` standard deviations, rescaled so the std is exactly `std`.

    This is JAX's initialiser; torch.nn.init.trunc_normal_ keeps the std of the untruncated
    normal, which is smaller than asked for.
    """
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        # Variance of a standard normal truncated to [-bound, bound].
        pdf = math.exp(-0.5 * bound**2) / math.sqrt(2 * math.pi)
        mass = math.erf(bound / math.sqrt(2))
        truncated_std = math.sqrt(1 - 2 * bound * pdf / mass)
        scale = std / truncated_std
        # Inverse-CDF sampling of the truncated normal.
        lo, hi = math.erf(-bound / math.sqrt(2)), math.erf(bound / math.sqrt(2))
        tensor.uniform_(lo, hi).erfinv_().mul_(math.sqrt(2) * scale)
        return tensor.clamp_(-bound * scale, bound * scale)


def rms_norm(x: torch.Tensor, eps: float, dim: int = -1) -> torch.Tensor:
    """RMS norm over `dim` without a learned scale, computed in float32 (post-norm needs the precision)."""
    dtype = x.dtype
    x = x.float()
    return (x * torch.rsqrt(x.square().mean(dim, keepdim=True) + eps)).to(dtype)


class Linear(nn.Module):
    """Bias-free (unless asked) linear layer with LeCun truncated-normal init, std 1/sqrt(fan_in).
    The product is the backend's."""

    def __init__(self, in_features: int, out_features: int, backend: Backend, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.linear(x, self.weight, self.bias)


class Embedding(nn.Module):
    def __init__(self, num: int, dim: int, std: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(num, dim), std=std))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.embedding(ids, self.weight.to(dtype))


class PuzzleEmbedding(nn.Module):
    """One zero-initialised vector per puzzle identifier, trained by its own sparse optimizer.

    The table is a buffer, not a parameter: the weight optimizer never sees it. In training
    (with gradients on) the rows of the batch become a fresh leaf tensor, kept as `rows` with
    their `ids`, so the sign-SGD optimizer can update just those rows (trm-spec section 5).
    """

    def __init__(self, num_identifiers: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_identifiers, dim))
        self.rows: torch.Tensor | None = None
        self.ids: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.weight[ids]
        if self.training and torch.is_grad_enabled():
            rows = rows.detach().requires_grad_(True)
            self.rows, self.ids = rows, ids
        return rows


class SwiGLU(nn.Module):
    """out = down(silu(gate) * value); the hidden width is 2/3 * expansion * d, rounded up to 256.

    `features_first` takes a (features, tokens) matrix and multiplies the weights from the left
    (a sequence-major backend's `token_swiglu`): the same result as transposing, applying and
    transposing back, without the transposed copies.
    """

    def __init__(self, dim: int, expansion: float, backend: Backend) -> None:
        super().__init__()
        inner = -(round(expansion * dim * 2 / 3) // -256) * 256
        self.gate_up_proj = Linear(dim, 2 * inner, backend)
        self.down_proj = Linear(inner, dim, backend)
        self.backend = backend

    def forward(self, x: torch.Tensor, features_first: bool = False) -> torch.Tensor:
        if features_first:
            return self.backend.token_swiglu(self.gate_up_proj.weight, self.down_proj.weight, x)
        gate, value = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * value)


def rotary_tables(length: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (length x head_dim) for rotary embeddings in the rotate-half layout."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, S, H, d) queries or keys by position, in float32."""
    dtype = x.dtype
    x = x.float()
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * cos[:, None] + rotated * sin[:, None]).to(dtype)


class Attention(nn.Module):
    """Non-causal multi-head self-attention with a fused qkv projection and no biases."""

    def __init__(self, hidden_size: int, num_heads: int, backend: Backend) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = Linear(hidden_size, 3 * num_heads * self.head_dim, backend)
        self.o_proj = Linear(num_heads * self.head_dim, hidden_size, backend)

    def forward(self, h: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        qkv = rearrange(self.qkv_proj(h), "b s (k h d) -> k b s h d", k=3, h=self.num_heads)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        q, k, v = (rearrange(t, "b s h d -> b h s d") for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o_proj(rearrange(out, "b h s d -> b s (h d)"))


class Block(nn.Module):
    """Post-norm block: h = rms(h + mix(h)); h = rms(h + swiglu(h)).

    The mixer is self-attention or, for TRM-MLP, a SwiGLU across the sequence axis. For the
    latter the first norm is also taken across the sequence axis, as in the reference. With a
    sequence-major backend the block works on (S, B, D) instead of (B, S, D): seen as an
    (S, B*D) matrix the token mixer is then two plain matrix products, and seen as (S*B, D) so
    is the channel MLP, with no transposed copies in between.
    """

    def __init__(self, config: ModelConfig, backend: Backend) -> None:
        super().__init__()
        self.eps = config.rms_norm_eps
        self.token_mlp = config.mixer == "mlp"
        if self.token_mlp:
            self.mixer = SwiGLU(config.total_len, config.expansion, backend)
        else:
            self.mixer = Attention(config.hidden_size, config.num_heads, backend)
        self.mlp = SwiGLU(config.hidden_size, config.expansion, backend)
        self.backend = backend

    def forward(self, h: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        if not self.token_mlp:
            h = rms_norm(h + self.mixer(h, rotary), self.eps)
        elif self.backend.sequence_major:  # h is (S, B, D)
            t = h.reshape(h.shape[0], -1)
            h = rms_norm(t + self.mixer(t, features_first=True), self.eps, dim=0).view(h.shape)
        else:  # h is (B, S, D): mix along S as the reference does, on the transpose
            t = h.transpose(1, 2)
            h = rms_norm(t + self.mixer(t), self.eps).transpose(1, 2)
        return rms_norm(h + self.mlp(h), self.eps)


def sequence_major(x: torch.Tensor) -> torch.Tensor:
    """x (..., B, S, D) with its memory laid out as (..., S, B, D); no copy if it already is."""
    return x.transpose(-3, -2).contiguous().transpose(-3, -2)


class Network(nn.Module):
    """The recursion's network: net(h, u) = blocks(h + u), u being the injected input.

    It takes and returns (B, S, D). With the MLP mixer and a sequence-major backend the blocks
    work on (S, B, D): pass states laid out by `sequence_major` and the transposes here are
    free; the result comes back laid out the same way.
    """

    def __init__(self, config: ModelConfig, num_layers: int, backend: Backend) -> None:
        super().__init__()
        self.mixer = config.mixer
        self.layers = nn.ModuleList(Block(config, backend) for _ in range(num_layers))
        self.backend = backend

    @property
    def sequence_major(self) -> bool:
        """The blocks work on (S, B, D) states."""
        return self.mixer == "mlp" and self.backend.sequence_major

    def forward(
        self, h: torch.Tensor, u: torch.Tensor | None, rotary: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        if u is not None:
            h = h + u
        sequence_major = self.sequence_major
        if sequence_major:
            h = h.transpose(0, 1)
        for layer in self.layers:
            h = layer(h, rotary)
        return h.transpose(0, 1) if sequence_major else h
