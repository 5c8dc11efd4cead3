"""Backend "auto": time the default and the CPU backend on the model's own shape and keep the faster.

Which is faster depends on the shape and the machine: oneDNN's float32 kernels and the
sequence-major MLP mixer win at the CPU recipe's D=64 on AVX-512 CPUs, while at other shapes
PyTorch's default kernels can win. A rule fitted to a few machines would be wrong on the next,
so at start-up both run a few forward and backward passes of one network of the model at the
real batch shape, interleaved, and the fastest time of each decides (other work on the machine
only ever adds time, so the minimum is the least noisy estimate); the default has to win by
more than `TIE`. Seeded, so the inputs are the
same each time; cached per shape for the life of the process.
"""

from __future__ import annotations

import functools
import time

import torch

from trm.backends import Backend, get_backend
from trm.config import ModelConfig
from trm.model.layers import Network, sequence_major

# Within this fraction the CPU backend is kept: compiled, it gains more than these eager timings
# show (CPU recipe, bfloat16, 2 cores: 1.04x eager for one network, 1.36x for compiled steps).
TIE = 0.05


def choose_backend(
    name: str, config: ModelConfig, batch_size: int, device: torch.device | str, dtype: torch.dtype
) -> tuple[Backend, str]:
    """The backend `name` names, or for "auto" the faster one here; and why, for the log."""
    if name != "auto":
        return get_backend(name), f"backend {name} (as configured)"
    device = torch.device(device)
    if device.type != "cpu":
        return get_backend("default"), "backend default (auto: the CPU backend is for CPUs)"
    if config.mixer != "mlp" and dtype != torch.float32:
        return get_backend("default"), f"backend default (auto: the CPU backend changes nothing for {dtype} attention)"
    key = config.model_dump_json(
        include={
            "hidden_size",
            "num_heads",
            "mixer",
            "expansion",
            "seq_len",
            "num_layers",
            "puzzle_emb_len",
            "puzzle_emb_ndim",
            "rms_norm_eps",
            "pos_encodings",
        }
    )
    winner, timings = _timed_choice(key, batch_size, dtype, torch.get_num_threads())
    said = ", ".join(f"{n} {ms:.1f} ms" for n, ms in timings)
    return get_backend(winner), f"backend {winner} (auto: one network's forward + backward here: {said})"


@functools.cache
def _timed_choice(
    config_json: str, batch_size: int, dtype: torch.dtype, threads: int, rounds: int = 5
) -> tuple[str, tuple[tuple[str, float], ...]]:
    config = ModelConfig.model_validate_json(config_json)
    g = torch.Generator().manual_seed(0)
    shape = (batch_size, config.total_len, config.hidden_size)
    h, u, grad = (torch.randn(shape, generator=g).to(dtype) for _ in range(3))
    with torch.random.fork_rng(devices=[]):  # the same weights for both, the caller's random state untouched
        nets = {}
        for name in ("default", "onednn"):
            torch.manual_seed(0)
            nets[name] = Network(config, config.num_layers, get_backend(name))

    # the states laid out as the model lays them out for each backend (`TRM.recurse`)
    inputs = {
        name: [sequence_major(t) if net.sequence_major else t for t in (h, u, grad)] for name, net in nets.items()
    }

    def once(name: str) -> float:
        state, injected, grad_out = inputs[name]
        start = time.perf_counter()
        nets[name](state, injected, None).backward(grad_out)
        nets[name].zero_grad(set_to_none=True)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in nets}
    for r in range(rounds + 1):  # the first round warms up and is not counted
        for name in list(nets) if r % 2 else list(nets)[::-1]:
            seconds = once(name)
            if r:
                times[name].append(seconds)
    fastest = {name: min(t) for name, t in times.items()}
    winner = "default" if fastest["default"] < (1 - TIE) * fastest["onednn"] else "onednn"
    return winner, tuple((name, 1000 * seconds) for name, seconds in fastest.items())
