"""`trm bench`: how fast a config trains here, against the machine's matmul rate.

Training-step throughput is reported as examples x supervision steps per second (one
optimizer step is one supervision step of every example in the batch), as model FLOPs per
second (matmuls of the forward and backward passes, `trm.train.flops`), and as a fraction of
the measured float32 matmul rate, which is the ceiling for this kind of model in float32. When
the forward pass runs in bfloat16 (the CPU recipe, the paper configs), its matmuls can beat the
float32 rate on hardware with native bfloat16 (AVX512-BF16, AMX, tensor cores), so the report
also gives the bfloat16 matmul rate and the fraction of it.

Launched as several processes (`python -m torch.distributed.run --nproc-per-node N -m trm
bench ...`), each process takes its slice of the global batch and gradients are summed across
processes before the update, as `trm train` does; the figures are then for all processes
together, and the matmul rate is measured on all of them at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from trm.backends import reuse_freed_memory
from trm.config import ModelConfig
from trm.data.format import read_dataset
from trm.errors import ConfigError, DataError
from trm.model.backend_choice import choose_backend
from trm.model.loss import act_loss
from trm.model.precision import resolve_forward_dtype
from trm.model.trm import TRM
from trm.train import dist as tdist
from trm.train.config import TrainConfig
from trm.train.dist import pick_device
from trm.train.flops import measure_matmul_rate, model_flops
from trm.train.optim import AdamATan2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainingStep(NamedTuple):
    step: Callable[[], None]
    model: TRM
    model_config: ModelConfig
    device: torch.device
    reuse_cpu_memory: bool  # freed CPU memory is kept for reuse
    backend: str  # the backend the model computes with, and why (`trm.model.backend_choice`)
    dist: tdist.Dist  # the processes sharing the global batch


def training_step(config: TrainConfig) -> TrainingStep:
    """The config's model, compiled if asked, and one training step (forward, backward,
    optimizer) on a fixed random batch of the global batch size, as `trm bench` times it.

    Applies the config's CPU settings (threads, freed memory kept, the backend). Under
    a multi-process launch this process takes its slice of the batch and the gradients are summed
    across processes before the update."""
    device = pick_device(config.device)
    group = tdist.init_distributed(device.type)
    if config.global_batch_size % group.world_size:
        raise ConfigError(
            f"global_batch_size={config.global_batch_size} does not split evenly across {group.world_size} processes"
        )
    if device.type == "cuda":
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)  # NCCL and the matmul-rate probe use the current device
    if config.threads:
        torch.set_num_threads(config.threads)
    kept = device.type == "cpu" and config.reuse_cpu_memory and reuse_freed_memory()
    model_config = config.model.model_copy(
        update=dict(forward_dtype=resolve_forward_dtype(config.model.forward_dtype, device))
    )
    try:  # the dataset fixes vocabulary and length when it is there; otherwise the config does
        meta = read_dataset(config.data.path, "train").metadata
        model_config = model_config.model_copy(
            update=dict(
                vocab_size=meta.vocab_size, seq_len=meta.seq_len, num_puzzle_identifiers=meta.num_puzzle_identifiers
            )
        )
    except DataError:  # no dataset at data.path: the config's own sizes
        pass
    backend, why = choose_backend(
        config.backend,
        model_config,
        config.global_batch_size // group.world_size,
        device,
        getattr(torch, model_config.forward_dtype),
    )
    torch.manual_seed(config.seed)
    model = TRM(model_config, backend).to(device).train()
    if group.enabled:
        tdist.broadcast_weights(model)
    if config.compile:
        torch._dynamo.reset()  # a fresh compile cache: graphs of an earlier bench in this process count
        model.compile_networks()  # against the recompile limit, past which torch runs eagerly
    optimizer = AdamATan2(
        model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
    )
    B, L, V = config.global_batch_size, model_config.seq_len, model_config.vocab_size
    g = torch.Generator().manual_seed(config.seed)
    batch = {
        "inputs": torch.randint(1, V, (B, L), generator=g),
        "labels": torch.randint(1, V, (B, L), generator=g),
        "puzzle_identifiers": torch.randint(0, model_config.num_puzzle_identifiers, (B,), generator=g),
    }
    mine = slice(group.rank * (B // group.world_size), (group.rank + 1) * (B // group.world_size))
    batch = {k: v[mine].to(device) for k, v in batch.items()}  # this process's slice of the global batch
    carry = model.initial_carry(batch)

    def step() -> None:
        nonlocal carry
        carry, out = model.step(carry, batch)
        loss, _ = act_loss(out, carry, model_config.loss)
        (loss / B).backward()
        if group.enabled:
            tdist.all_reduce_gradients(model)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if model.puzzle_emb is not None:
            model.puzzle_emb.rows = None  # the trainer hands these rows to the sparse optimizer

    return TrainingStep(step, model, model_config, device, bool(kept), why, group)


def _barrier(group: tdist.Dist) -> None:
    if group.enabled:
        tdist.dist.barrier()


def _scalar(value: float, device: torch.device) -> torch.Tensor:
    """`value` as a tensor to reduce across processes, on the device (NCCL reduces GPU tensors only)."""
    return torch.tensor([value], dtype=torch.float64, device=device)


def bench(config: TrainConfig, steps: int = 20, warmup: int = 5) -> dict[str, float | str]:
    step, model, model_config, device, kept, backend, group = training_step(config)
    B = config.global_batch_size
    for _ in range(warmup):
        step()
    _sync(device)
    _barrier(group)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    _barrier(group)
    seconds = tdist.all_reduce_max(_scalar((time.perf_counter() - start) / steps, device)).item()  # the slowest
    flops = model_flops(model_config, B, training=True)["total"]
    # the all-reduce above returns once every process has reached it: the probe starts together
    matmul = measure_matmul_rate(torch.float32, device=device.type)
    matmul = tdist.all_reduce_sum(_scalar(matmul, device)).item()  # every process measured at once
    result = {
        "step_seconds": seconds,
        "examples_x_steps_per_s": B / seconds,
        "model_flops_per_step": flops,
        "model_flops_per_s": flops / seconds,
        "matmul_flops_per_s": matmul,
        "fraction_of_matmul_rate": flops / seconds / matmul,
        "threads": torch.get_num_threads(),
        "processes": group.world_size,
        "reuse_cpu_memory": float(kept),
        "parameters": model.num_parameters(),
        "backend": backend,
    }
    if model_config.forward_dtype != "float32":  # the matmuls run in this dtype: its rate is the tighter ceiling
        dtype_rate = measure_matmul_rate(getattr(torch, model_config.forward_dtype), device=device.type)
        dtype_rate = tdist.all_reduce_sum(_scalar(dtype_rate, device)).item()
        result["forward_dtype_matmul_flops_per_s"] = dtype_rate
        result["fraction_of_forward_dtype_matmul_rate"] = flops / seconds / dtype_rate
    return result


def print_report(config: TrainConfig, result: dict[str, float | str], device: str) -> None:
    m = config.model.model_copy(update=dict(forward_dtype=resolve_forward_dtype(config.model.forward_dtype, device)))
    print(
        f"config: D={m.hidden_size} T={m.T} n={m.n} layers={m.num_layers} mixer={m.mixer} "
        f"batch={config.global_batch_size} dtype={m.forward_dtype} compile={config.compile} "
        f"device={device} threads={result['threads']}"
        + (f" x {result['processes']:.0f} processes" if result.get("processes", 1) > 1 else "")
        + (" (freed CPU memory kept for reuse)" if result.get("reuse_cpu_memory") else "")
    )
    print(f"  {result['backend']}")
    print(f"  training step          {result['step_seconds'] * 1000:10.1f} ms")
    print(f"  examples x sup. steps  {result['examples_x_steps_per_s']:10.1f} /s")
    print(
        f"  model FLOPs            {result['model_flops_per_s'] / 1e9:10.1f} GFLOP/s "
        f"({result['model_flops_per_step'] / 1e9:.1f} GFLOP per step)"
    )
    print(f"  float32 matmul rate    {result['matmul_flops_per_s'] / 1e9:10.1f} GFLOP/s (measured)")
    print(f"  fraction of matmul     {result['fraction_of_matmul_rate']:10.1%}")
    if "forward_dtype_matmul_flops_per_s" in result:
        rate = result["forward_dtype_matmul_flops_per_s"] / 1e9
        print(f"  {m.forward_dtype} matmul rate   {rate:10.1f} GFLOP/s (measured)")
        print(f"  fraction of {m.forward_dtype:<8s}   {result['fraction_of_forward_dtype_matmul_rate']:10.1%}")
