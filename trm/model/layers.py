"""Building blocks of the TRM network (trm-spec section 2).

Every weight is stored in float32 and cast to the activations' dtype at use, so one set of
weights serves a float32 or a bfloat16 forward pass on any device.
"""

from __future__ import annotations

import math
import platform

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.flop_counter import register_flop_formula

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


def _onednn_available() -> bool:
    """oneDNN's float32 matmul is in this build, on an x86-64 CPU (where it was measured to help)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return x86 and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_ONEDNN_FLOAT32 = _onednn_available()


def use_onednn_float32(enabled: bool) -> bool:
    """Route float32 CPU matmuls of the model through oneDNN (the default on x86-64) or not.

    PyTorch sends float32 matmuls to MKL; at this model's narrow shapes oneDNN's float32 kernels are
    up to 1.4x faster on some CPUs (`bench/cpu_matmul_backends.py` compares the two). Both compute
    in full float32. Returns whether oneDNN is now in use (False on other CPUs or without it).
    """
    global _ONEDNN_FLOAT32
    _ONEDNN_FLOAT32 = enabled and _onednn_available()
    return _ONEDNN_FLOAT32


def _onednn(x: torch.Tensor) -> bool:
    return _ONEDNN_FLOAT32 and x.dtype == torch.float32 and x.device.type == "cpu"


@torch.library.custom_op("trm::onednn_matmul_nt", mutates_args=())
def onednn_matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T for 2-D float32 CPU tensors, by oneDNN's float32 matmul (any strides)."""
    a, b = (t if 1 in t.stride() else t.contiguous() for t in (a, b))  # row- or column-major as they are
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], None)


@onednn_matmul_nt.register_fake
def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[0])


def _onednn_matmul_nt_backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    a, b = ctx.saved_tensors
    grad_a = onednn_matmul_nt(grad, b.t()) if ctx.needs_input_grad[0] else None  # grad @ b
    # grad^T @ a by PyTorch's default: for the linear layers this is the weight gradient, a long
    # reduction over tokens, where oneDNN is no faster.
    grad_b = grad.t() @ a if ctx.needs_input_grad[1] else None
    return grad_a, grad_b


def _onednn_matmul_nt_setup(ctx, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


onednn_matmul_nt.register_autograd(_onednn_matmul_nt_backward, setup_context=_onednn_matmul_nt_setup)


@register_flop_formula(torch.ops.trm.onednn_matmul_nt)
def _(a_shape: torch.Size, b_shape: torch.Size, *args, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1] * b_shape[0]


class Linear(nn.Module):
    """Bias-free (unless asked) linear layer with LeCun truncated-normal init, std 1/sqrt(fan_in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        if not _onednn(x):
            return F.linear(x, self.weight.to(x.dtype), bias)
        out = onednn_matmul_nt(x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)
        return out if bias is None else out + bias


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


class _LeftMatmul(torch.autograd.Function):
    """w @ x, with the weight gradient computed as (x @ grad^T)^T.

    The same product as autograd's grad @ x^T, transposed: for the token mixer's (2*inner, S)
    weight, oneDNN computes it 1.6x faster with the wide dimension last (bfloat16, 2 CPU cores).
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w, x)
        return w @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, x = ctx.saved_tensors
        return (x @ grad.t()).t(), w.t() @ grad


def left_matmul(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """weight @ x for a 2-D x, in the fastest formulation for the device and dtype."""
    if _onednn(x):
        return onednn_matmul_nt(weight, x.t())
    return _LeftMatmul.apply(weight, x)


class SwiGLU(nn.Module):
    """out = down(silu(gate) * value); the hidden width is 2/3 * expansion * d, rounded up to 256.

    `features_first` takes a (features, tokens) matrix and multiplies the weights from the left:
    the same result as transposing, applying and transposing back, without the transposed copies.
    """

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        inner = -(round(expansion * dim * 2 / 3) // -256) * 256
        self.gate_up_proj = Linear(dim, 2 * inner)
        self.down_proj = Linear(inner, dim)

    def forward(self, x: torch.Tensor, features_first: bool = False) -> torch.Tensor:
        if features_first:
            gate, value = left_matmul(self.gate_up_proj.weight.to(x.dtype), x).chunk(2, dim=0)
            hidden = F.silu(gate) * value
            if _onednn(x):
                return onednn_matmul_nt(self.down_proj.weight, hidden.t())
            return self.down_proj.weight.to(x.dtype) @ hidden
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

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = Linear(hidden_size, 3 * num_heads * self.head_dim)
        self.o_proj = Linear(num_heads * self.head_dim, hidden_size)

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
    latter the first norm is also taken across the sequence axis, as in the reference, and the
    block works sequence-major, on (S, B, D) instead of (B, S, D): seen as an (S, B*D) matrix the
    token mixer is then two plain matrix products, and seen as (S*B, D) so is the channel MLP,
    with no transposed copies in between.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.eps = config.rms_norm_eps
        self.token_mlp = config.mixer == "mlp"
        if self.token_mlp:
            self.mixer = SwiGLU(config.total_len, config.expansion)
        else:
            self.mixer = Attention(config.hidden_size, config.num_heads)
        self.mlp = SwiGLU(config.hidden_size, config.expansion)

    def forward(self, h: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        if self.token_mlp:  # h is (S, B, D)
            t = h.reshape(h.shape[0], -1)
            h = rms_norm(t + self.mixer(t, features_first=True), self.eps, dim=0).view(h.shape)
        else:
            h = rms_norm(h + self.mixer(h, rotary), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)


def sequence_major(x: torch.Tensor) -> torch.Tensor:
    """x (..., B, S, D) with its memory laid out as (..., S, B, D); no copy if it already is."""
    return x.transpose(-3, -2).contiguous().transpose(-3, -2)


class Network(nn.Module):
    """The recursion's network: net(h, u) = blocks(h + u), u being the injected input.

    It takes and returns (B, S, D). With the MLP mixer the blocks work on (S, B, D): pass
    states laid out by `sequence_major` and the transposes here are free; the result comes
    back laid out the same way.
    """

    def __init__(self, config: ModelConfig, num_layers: int) -> None:
        super().__init__()
        self.sequence_major = config.mixer == "mlp"
        self.layers = nn.ModuleList(Block(config) for _ in range(num_layers))

    def forward(
        self, h: torch.Tensor, u: torch.Tensor | None, rotary: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        if u is not None:
            h = h + u
        if self.sequence_major:
            h = h.transpose(0, 1)
        for layer in self.layers:
            h = layer(h, rotary)
        return h.transpose(0, 1) if self.sequence_major else h
