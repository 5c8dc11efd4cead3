"""Widen a trained TRM-MLP: the same function at a larger hidden size D, to train on from there.

A curriculum in width: a narrow model learns fast on a small budget (docs/scaling.md), a wide
one has room for harder puzzles. `widen` turns a model of width D into one of width r * D that
computes the same logits and halting values, so training the wide one starts where the narrow
one stopped instead of from scratch.

Every D-wide state of the wide model is the narrow one's repeated r times ([h, h, ..., h]).
That is a fixed point of each layer when

- weights reading a state are the narrow ones repeated along the input and divided by r
  (a repeated input sums r copies of the same product),
- weights writing a state are the narrow ones repeated along the output,
- the token embedding is repeated and divided by sqrt(r) (x is scaled by sqrt(D)), and the
  fixed initial states y_init and z_init are repeated.

RMS norms over D see the same mean square, the token mixer acts on each channel alone and
needs nothing, and the channel MLP's extra hidden units (its width grows with D) start with
zero output weights, so they add nothing until trained. Repeated channels would also get
repeated gradients and stay copies forever. The extra units' random input weights differ
between copies, which parts them once those units have output weights; where the MLP has no
extra units (its width is rounded up to multiples of 256), `noise` must do it: Gaussian noise
of that fraction of each widened weight tensor's standard deviation. Recursion amplifies
it (1e-2 changes a Sudoku model's answers; 1e-3 keeps them).
"""

from __future__ import annotations

import math

import torch

from trm.config import ModelConfig
from trm.errors import ConfigError
from trm.model.layers import SwiGLU
from trm.model.trm import TRM


def check_widenable(narrow: ModelConfig, wide: ModelConfig) -> None:
    """Raise ConfigError unless `wide` is `narrow` at a hidden size that is a multiple of its own."""
    D, wide_D = narrow.hidden_size, wide.hidden_size
    if wide_D % D or wide_D < D:
        raise ConfigError(f"widening needs a hidden size that is a multiple of {D} (got {wide_D})")
    if narrow.mixer != "mlp":
        raise ConfigError(f"widening needs the MLP mixer (mixer: mlp); this model's is '{narrow.mixer}'")
    if narrow.puzzle_emb_ndim:
        raise ConfigError("widening needs a model without puzzle embeddings (puzzle_emb_ndim: 0)")
    free = {"hidden_size", "T", "n", "N_sup", "forward_dtype", "halt_exploration_prob"}
    differ = [k for k, v in narrow.model_dump().items() if k not in free and getattr(wide, k) != v]
    if differ:
        raise ConfigError(f"widening changes only hidden_size (and T, n, N_sup); these differ too: {', '.join(differ)}")


@torch.no_grad()
def widen(model: TRM, config: ModelConfig, noise: float = 0.0, seed: int = 0) -> TRM:
    """A new TRM of `config` (the model's config at a larger hidden size) computing what `model`
    computes, plus `noise` (see the module docstring). `seed` seeds the new hidden units and the noise."""
    check_widenable(model.config, config)
    r = config.hidden_size // model.config.hidden_size
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = TRM(config)
    narrow_state = {k: v.float().cpu() for k, v in model.state_dict().items()}

    def reading(w: torch.Tensor) -> torch.Tensor:  # (out, D) -> (out, r * D)
        return w.repeat(1, r) / r

    def writing(w: torch.Tensor) -> torch.Tensor:  # (D, in) -> (r * D, in)
        return w.repeat(r, 1)

    new = {
        "y_init": narrow_state["y_init"].repeat(r),
        "z_init": narrow_state["z_init"].repeat(1, r),
        "embed_tokens.weight": narrow_state["embed_tokens.weight"].repeat(1, r) / math.sqrt(r),
        "lm_head.weight": reading(narrow_state["lm_head.weight"]),
        "q_head.weight": reading(narrow_state["q_head.weight"]),
        "q_head.bias": narrow_state["q_head.bias"],
    }
    if model.embed_pos is not None:
        new["embed_pos.weight"] = narrow_state["embed_pos.weight"].repeat(1, r) / math.sqrt(r)
    extra_units = False
    for name, module in wide.named_modules():
        if not isinstance(module, SwiGLU) or name.endswith(".mixer"):
            continue  # token mixers act on each channel alone: copied as they are below
        inner = narrow_state[f"{name}.down_proj.weight"].shape[1]
        gate, value = narrow_state[f"{name}.gate_up_proj.weight"].chunk(2)
        wide_gate, wide_value = module.gate_up_proj.weight.detach().clone().chunk(2)  # fresh init for extra units
        wide_gate[:inner], wide_value[:inner] = reading(gate), reading(value)
        extra_units |= module.down_proj.weight.shape[1] > inner
        down = torch.zeros_like(module.down_proj.weight)
        down[:, :inner] = writing(narrow_state[f"{name}.down_proj.weight"])
        new[f"{name}.gate_up_proj.weight"] = torch.cat((wide_gate, wide_value))
        new[f"{name}.down_proj.weight"] = down
    for key, tensor in narrow_state.items():
        if key.endswith((".mixer.gate_up_proj.weight", ".mixer.down_proj.weight")):
            new[key] = tensor
    if not extra_units and noise == 0:
        raise ConfigError(
            f"at hidden size {config.hidden_size} the channel MLP gains no hidden units, so the repeated "
            "channels would stay copies in training: give a noise above 0 (1e-3 keeps the answers)"
        )
    missing = set(wide.state_dict()) - set(new)
    assert not missing, f"widen: no rule for {sorted(missing)}"

    for key, tensor in new.items():
        widened = tensor.dim() == 2 and ".mixer." not in key and key != "z_init"
        if noise > 0 and widened:
            tensor += noise * tensor[tensor != 0].std() * torch.randn(tensor.shape, generator=generator)
    wide.load_state_dict(new)
    return wide.to(model.y_init.device)
