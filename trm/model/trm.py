"""The Tiny Recursive Model, its ablations, HRM and the direct-prediction baseline.

Paper names, with the reference code's names in brackets: x is the embedded question, y the
current answer [z_H], z the latent reasoning state [z_L], T cycles [H_cycles] of n latent
updates [L_cycles], N_sup supervision steps [halt_max_steps].

One supervision step (trm-spec section 3):

    repeat T-1 times without gradient:  (n times: z = net(z, y + x));  y = net(y, z)
    once with gradient:                  (n times: z = net(z, y + x));  y = net(y, z)
    logits = head(y) without the prefix;  q_halt, q_continue = q_head(y[:, 0])

Deep supervision (section 4) runs this step up to N_sup times per example, carrying (y, z)
across optimizer steps; `TRM.step` implements the reference carry semantics.
"""

from __future__ import annotations

import math
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from trm.backends import Backend
from trm.config import ModelConfig
from trm.model.layers import (
    Embedding,
    Linear,
    Network,
    PuzzleEmbedding,
    rotary_tables,
    sequence_major,
    trunc_normal_,
)
from trm.model.precision import resolve_forward_dtype
from trm.model.schedule import schedule

Batch = Mapping[str, torch.Tensor]  # inputs (B x L), labels (B x L), puzzle_identifiers (B)


@dataclass
class Carry:
    """What deep supervision carries from one step to the next, per sample.

    y: (B, S, D) answer state; z: (K, B, S, D) latent states (K = 0, 1 or n, see
    ModelConfig.num_latents); steps: supervision steps taken; halted: the sample finished
    and restarts with new data at the next step; data: the batch the sample is working on.
    """

    y: torch.Tensor
    z: torch.Tensor
    steps: torch.Tensor
    halted: torch.Tensor
    data: dict[str, torch.Tensor]


@dataclass
class StepOutput:
    logits: torch.Tensor  # (B, L, V)
    q_halt: torch.Tensor  # (B,) float32
    q_continue: torch.Tensor  # (B,) float32
    target_q_continue: torch.Tensor | None = None  # (B,), only with act_continue in training


class TRM(nn.Module):
    def __init__(self, config: ModelConfig, backend: Backend | None = None) -> None:
        super().__init__()
        self.config = config
        self.schedule = schedule(config)
        backend = backend or Backend()
        D = config.hidden_size
        self._dtype: torch.dtype | None = None  # None: the config's, resolved for the weights' device
        self.embed_scale = math.sqrt(D)

        self.embed_tokens = Embedding(config.vocab_size, D, std=1 / self.embed_scale)
        self.lm_head = Linear(D, config.vocab_size, backend)
        self.q_head = Linear(D, 2, backend, bias=True)
        with torch.no_grad():  # start by predicting "do not halt yet"
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

        self.puzzle_emb = (
            PuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim)
            if config.puzzle_emb_ndim > 0
            else None
        )
        self.embed_pos = (
            Embedding(config.total_len, D, std=1 / self.embed_scale) if config.pos_encodings == "learned" else None
        )
        if config.pos_encodings == "rope":
            cos, sin = rotary_tables(config.total_len, D // config.num_heads, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

        self.net = Network(config, config.num_layers, backend)
        self.net_y = Network(config, config.y_layers or config.num_layers, backend) if config.separate_nets else None
        self._latent_update, self._answer_update = LATENTS[config.latent]

        # Fixed starting states, stored with the weights but never trained.
        self.register_buffer("y_init", trunc_normal_(torch.empty(D), std=1.0))
        self.register_buffer("z_init", trunc_normal_(torch.empty(config.num_latents, D), std=1.0))

    @property
    def dtype(self) -> torch.dtype:
        """The forward pass's dtype: the config's forward_dtype ("auto" resolved for the device the
        weights are on, `trm.model.precision`), unless one was set."""
        if self._dtype is not None:
            return self._dtype
        return getattr(torch, resolve_forward_dtype(self.config.forward_dtype, self.y_init.device))

    @dtype.setter
    def dtype(self, value: torch.dtype) -> None:
        self._dtype = value

    # ------------------------------------------------------------------ embedding and heads

    def embed(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        """x: token embeddings behind the puzzle-embedding prefix, scaled by sqrt(D)."""
        cfg = self.config
        x = self.embed_tokens(inputs.long(), self.dtype)
        if self.puzzle_emb is not None:
            prefix = self.puzzle_emb(puzzle_identifiers.long()).to(self.dtype)
            prefix = F.pad(prefix, (0, cfg.prefix_len * cfg.hidden_size - prefix.shape[-1]))
            x = torch.cat((prefix.view(-1, cfg.prefix_len, cfg.hidden_size), x), dim=1)
        if self.embed_pos is not None:
            # 0.707106781 = 1/sqrt(2) keeps the variance of the sum; the constant is the reference's.
            x = 0.707106781 * (x + self.embed_pos.weight.to(self.dtype))
        return self.embed_scale * x

    def heads(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.lm_head(y)[:, self.config.prefix_len :]
        q = self.q_head(y[:, 0]).float()  # the halting head reads the first (prefix) position
        return logits, q[..., 0], q[..., 1]

    def _rotary(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return (self.rope_cos, self.rope_sin) if self.config.pos_encodings == "rope" else None

    # ------------------------------------------------------------------ recursion

    def recurse(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One supervision step's recursion (trm-spec section 3): T-1 cycles without gradient,
        then one with. z holds the K latent states (K, B, S, D). Returns the new (y, z)."""
        T, n = self.config.T, self.config.n
        if self.net.sequence_major:  # lay the states out as the networks work on them (no copy if they are)
            x, y, z = sequence_major(x), sequence_major(y), sequence_major(z)
        zs = list(z.unbind(0))
        with torch.no_grad():
            for _ in range(T - 1):
                y, zs = self.cycle(x, y, zs, n, graded=0)
        y, zs = self.cycle(x, y, zs, n, graded=self.schedule.graded)
        return y, torch.stack(zs) if zs else z

    def cycle(
        self, x: torch.Tensor, y: torch.Tensor, z: list[torch.Tensor], n: int, graded: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """n latent updates z = net(z, y + x), then y = net(y, z); only the last `graded` of these
        n + 1 calls carry gradient (all of them, or two with HRM's one-step gradient)."""
        grad, rotary = torch.is_grad_enabled(), self._rotary()
        net = partial(self.net, rotary=rotary)
        y_net = self.net_y if self.schedule.answer_net == "net_y" and self.net_y is not None else self.net
        net_y = partial(y_net, rotary=rotary)
        for i in range(n):
            with torch.set_grad_enabled(grad and i >= n + 1 - graded):
                y, z = self._latent_update(net, x, y, z, i)
        with torch.set_grad_enabled(grad and graded > 0):
            return self._answer_update(net_y, x, y, z), z

    def supervision_step(self, y: torch.Tensor, z: torch.Tensor, batch: Batch):
        """One supervision step from (y, z) on `batch`: new detached (y, z) and the outputs."""
        x = self.embed(batch["inputs"], batch["puzzle_identifiers"])
        y, z = self.recurse(x, y, z)
        logits, q_halt, q_continue = self.heads(y)
        return y.detach(), z.detach(), StepOutput(logits, q_halt, q_continue)

    # ------------------------------------------------------------------ deep supervision

    def initial_carry(self, batch: Batch) -> Carry:
        """A carry in which every sample has halted, so the first step starts them all."""
        B = batch["inputs"].shape[0]
        device = batch["inputs"].device
        shape = (B, self.config.total_len, self.config.hidden_size)
        return Carry(
            y=torch.zeros(shape, dtype=self.dtype, device=device),
            z=torch.zeros((self.config.num_latents, *shape), dtype=self.dtype, device=device),
            steps=torch.zeros(B, dtype=torch.int32, device=device),
            halted=torch.ones(B, dtype=torch.bool, device=device),
            data={k: torch.zeros_like(v) for k, v in batch.items()},
        )

    def reset(self, carry: Carry, batch: Batch) -> Carry:
        """Halted samples restart from the initial states with the new batch's example at
        their index; running samples keep their state and their old example."""
        h = carry.halted
        data = {k: torch.where(h.view(-1, *[1] * (v.ndim - 1)), batch[k], v) for k, v in carry.data.items()}
        return Carry(
            y=torch.where(h.view(-1, 1, 1), self.y_init.to(self.dtype), carry.y),
            z=torch.where(h.view(1, -1, 1, 1), self.z_init.to(self.dtype)[:, None, None, :], carry.z),
            steps=torch.where(h, 0, carry.steps),
            halted=h,
            data=data,
        )

    def step(self, carry: Carry, batch: Batch) -> tuple[Carry, StepOutput]:
        """One deep-supervision step with the reference semantics (trm-spec section 4).

        In training a sample halts when q_halt > 0 (or q_halt > q_continue with act_continue),
        not before a random minimum step count when exploring, and always at N_sup. In
        evaluation every sample runs exactly N_sup steps.
        """
        cfg = self.config
        carry = self.reset(carry, batch)
        y, z, out = self.supervision_step(carry.y, carry.z, carry.data)

        with torch.no_grad():
            steps = carry.steps + 1
            last = steps >= cfg.N_sup
            halted = last
            if self.training and cfg.N_sup > 1:
                halted = halted | ((out.q_halt > out.q_continue) if cfg.act_continue else (out.q_halt > 0))
                explore = torch.rand_like(out.q_halt) < cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=cfg.N_sup + 1)
                halted = halted & (steps >= min_steps)
                if cfg.act_continue:
                    # Q-learning target from a second pass on the new state (no replay buffer).
                    _, _, nxt = self.supervision_step(y, z, carry.data)
                    target = torch.where(last, nxt.q_halt, torch.maximum(nxt.q_halt, nxt.q_continue))
                    out.target_q_continue = torch.sigmoid(target)
        return Carry(y, z, steps, halted, carry.data), out

    forward = step

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, z) at the start of a sample: the fixed initial vectors at every position."""
        y = self.y_init.to(self.dtype).expand(batch_size, self.config.total_len, -1)
        return y, self.z_init.to(self.dtype)[:, None, None, :].expand(-1, *y.shape)

    @torch.no_grad()
    def rollout(self, batch: Batch, steps: int | None = None) -> dict[str, torch.Tensor]:
        """Run `steps` (default N_sup) supervision steps on `batch` from the initial state
        without halting. Returns stacked per-step `logits` (K, B, L, V), `q_halt_logits` and
        `q_continue_logits` (K, B), and `preds` (K, B, L)."""
        y, z = self.initial_state(batch["inputs"].shape[0])
        outs = []
        for _ in range(steps or self.config.N_sup):
            y, z, out = self.supervision_step(y, z, batch)
            outs.append(out)
        logits = torch.stack([o.logits for o in outs])
        return {
            "logits": logits,
            "q_halt_logits": torch.stack([o.q_halt for o in outs]),
            "q_continue_logits": torch.stack([o.q_continue for o in outs]),
            "preds": logits.argmax(-1),
        }

    # ------------------------------------------------------------------ utilities

    def num_parameters(self) -> int:
        """Trained weights, excluding the puzzle-embedding table (as the paper counts)."""
        return sum(p.numel() for p in self.parameters())

    def use_backend(self, backend: Backend) -> None:
        """Compute with `backend` from now on (the weights stay as they are)."""
        for module in self.modules():
            if "backend" in vars(module):
                module.backend = backend

    def compile_networks(self, **kwargs) -> bool:
        """torch.compile the recursion's networks in place (state-dict keys are unchanged).

        torch.compile generates C++ (CPU) or Triton (GPU) code and needs a C++ compiler to build
        it; without one the networks stay eager, with a warning, and this returns False.
        """
        if not any(shutil.which(cc) for cc in ("c++", "g++", "clang++", "cl")):
            warnings.warn("torch.compile needs a C++ compiler (none found on PATH): running eagerly", stacklevel=2)
            return False
        self.net.compile(**kwargs)
        if self.net_y is not None:
            self.net_y.compile(**kwargs)
        return True


# The latent variants (trm-spec section 3 and the paper's ablations): what one latent update and
# the answer update read and write. z is the list of latent states; net(h, u) = blocks(h + u).


def _trm_latent(net, x, y, z, i):  # TRM: z = net(z, y + x)
    return y, [net(z[0], y + x)]


def _trm_answer(net, x, y, z):  # y = net(y, z)
    return net(y, z[0])


def _single_latent(net, x, y, z, i):  # single-z: the one state lives in y's slot; y = net(y, x)
    return net(y, x), z


def _single_answer(net, x, y, z):  # y = net(y)
    return net(y, None)


def _multiscale_latent(net, x, y, z, i):  # multi-scale z: z_i = net(z_1 + ... + z_n, y + x)
    return y, [*z[:i], net(sum(z), y + x), *z[i + 1 :]]


def _multiscale_answer(net, x, y, z):  # y = net(y, z_1 + ... + z_n)
    return net(y, sum(z))


def _direct_answer(net, x, y, z):  # direct prediction (no latent, n = 0): y = net(y, x)
    return net(y, x)


LATENTS = {
    "yz": (_trm_latent, _trm_answer),
    "single_z": (_single_latent, _single_answer),
    "multiscale_z": (_multiscale_latent, _multiscale_answer),
    "none": (None, _direct_answer),
}
