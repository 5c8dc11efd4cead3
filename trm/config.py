"""Typed configuration. Defaults are the paper's (trm-spec section 8).

Names follow the paper: `T` cycles of `n` latent updates, `N_sup` supervision steps. The
reference code calls these H_cycles, L_cycles and halt_max_steps; `trm.model.checkpoint`
translates its configs.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from trm.errors import ConfigError

# The label of positions no loss or metric counts (batch padding, and the dataset's own
# ignore_label_id once read): PyTorch's cross-entropy default, as the reference uses.
IGNORE_LABEL_ID = -100
# How evaluation and solving stop each sample (trm.eval.adaptive): "fixed" runs every sample to
# the step cap (the reference's evaluation); "adaptive" stops it when its halting head says so;
# "valid" when, in addition, its answer keeps the puzzle's rules.
HALT_MODES = ("fixed", "adaptive", "valid")
# Kernels for the model's products: "auto" or a name in trm.backends.BACKENDS (kept here, free of torch, for the CLI).
BACKEND_CHOICES = ("auto", "default", "onednn")
# A sample halts when q_halt > this; 0 is the rule the model was trained to halt by.
HALT_THRESHOLD = 0.0
# How test-time scaling picks a puzzle's answer from its trajectories (trm.eval.trajectories).
SELECT_RULES = ("verify", "halt", "vote")


class ModelConfig(BaseModel):
    """One model family: TRM and its ablations, HRM and the direct-prediction baseline.

    The variants are flags on one model (trm-spec sections 2-4 and 8):
    - `latent`: "yz" (TRM: answer y and latent z), "single_z" (one state, the heads read it),
      "multiscale_z" (n latent states z_1..z_n), "none" (no latent: y = net(y, x), the
      direct-prediction baseline when T = 1).
    - `separate_nets`: a second network (with `y_layers` blocks) updates y.
    - `one_step_gradient`: only the last z and y updates carry gradient (HRM's approximation)
      instead of the whole last cycle.
    - `act_continue`: train q_continue from a second forward pass (original ACT) and halt when
      q_halt > q_continue instead of q_halt > 0.
    HRM is `separate_nets + one_step_gradient + act_continue` with 4 + 4 layers, T = n = 2.
    """

    # Every field states its range; NaN and infinity are rejected (allow_inf_nan=False).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Task
    vocab_size: PositiveInt = 11
    seq_len: PositiveInt = 81
    num_puzzle_identifiers: PositiveInt = 1

    # Network
    hidden_size: PositiveInt = 512  # D
    num_heads: PositiveInt = 8
    expansion: PositiveFloat = 4.0
    num_layers: PositiveInt = 2  # L_layers: blocks of the (shared or z) network
    y_layers: PositiveInt | None = None  # H_layers: blocks of the separate y network (default num_layers)
    mixer: Literal["attention", "mlp"] = "attention"  # "mlp" = TRM-MLP (reference mlp_t)
    pos_encodings: Literal["rope", "learned", "none"] = "rope"
    rope_theta: PositiveFloat = 10000.0
    rms_norm_eps: PositiveFloat = 1e-5
    puzzle_emb_ndim: NonNegativeInt = 0  # P; 0 disables the puzzle embedding and its prefix
    puzzle_emb_len: NonNegativeInt = 16  # prefix positions; 0 means ceil(P / D)

    # Recursion
    T: PositiveInt = 3  # H_cycles
    n: NonNegativeInt = 6  # L_cycles; 0 only without a latent (checked below)
    N_sup: PositiveInt = 16  # halt_max_steps
    halt_exploration_prob: float = Field(0.1, ge=0, le=1)

    # Ablations
    latent: Literal["yz", "single_z", "multiscale_z", "none"] = "yz"
    separate_nets: bool = False
    one_step_gradient: bool = False
    act_continue: bool = False

    # Numerics and loss
    # "auto": bfloat16 where matmuls run natively in it (CUDA from Ampere on, x86 CPUs with
    # AVX512-BF16 or AMX), float32 elsewhere (trm.model.precision).
    forward_dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    loss: Literal["stablemax", "softmax"] = "stablemax"

    @property
    def prefix_len(self) -> int:
        """Positions the puzzle embedding occupies before the tokens."""
        if self.puzzle_emb_ndim == 0:
            return 0
        return self.puzzle_emb_len or math.ceil(self.puzzle_emb_ndim / self.hidden_size)

    @property
    def total_len(self) -> int:
        return self.prefix_len + self.seq_len

    @property
    def num_latents(self) -> int:
        """Number of separate z states carried besides y."""
        return {"yz": 1, "single_z": 0, "multiscale_z": self.n, "none": 0}[self.latent]

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        # Single-field ranges are on the fields; these checks tie fields together.
        if self.latent != "none" and self.n < 1:
            raise ValueError(f"n must be at least 1 for latent '{self.latent}', got {self.n}")
        if self.latent == "none" and self.n != 0:
            raise ValueError("latent 'none' (direct prediction) has no latent updates: set n = 0")
        if self.mixer == "attention" and self.hidden_size < self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is smaller than num_heads {self.num_heads}")
        if self.pos_encodings == "rope" and (self.hidden_size // self.num_heads) % 2:
            raise ValueError("rope needs an even head dimension (hidden_size / num_heads)")
        if self.puzzle_emb_ndim > self.prefix_len * self.hidden_size:
            raise ValueError(
                f"puzzle_emb_ndim {self.puzzle_emb_ndim} does not fit in puzzle_emb_len "
                f"{self.puzzle_emb_len} positions of size {self.hidden_size}"
            )
        if self.y_layers is not None and not self.separate_nets:
            raise ValueError("y_layers is only used with separate_nets = true")
        return self


def make_config(cls: type[BaseModel], values: dict[str, Any], where: str = "config") -> Any:
    """Build a typed config, turning validation errors into a ConfigError naming the field."""
    try:
        return cls.model_validate(values)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = ".".join(str(p) or "''" for p in err["loc"]) or "(config)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "model_type":  # a whole section given one value, e.g. model=3
                msg = f"is a section: set its keys (e.g. {field}.KEY=VALUE), not a single value"
            lines.append(f"{field}: {msg}" + (f" (got {err['input']!r})" if err["type"] != "value_error" else ""))
        raise ConfigError(f"{where}: " + "; ".join(lines)) from None
