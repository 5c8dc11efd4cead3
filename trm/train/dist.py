"""Multi-process data parallelism through torch.distributed (gloo on CPU, NCCL on GPU).

Launch with `python -m torch.distributed.run --nproc-per-node N -m trm train CONFIG`; the
launcher sets RANK, WORLD_SIZE and LOCAL_RANK. Each process draws its slice of the same global
batch, gradients are summed across processes (the loss is already divided by the global batch
size), so every process applies the same update to the same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from trm.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> Dist:
    """Join the process group the launcher describes, or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown(clean: bool = False) -> None:
    """Leave the process group. After a clean finish every process first waits for the others:
    gloo can abort a process whose peer tears its connections down while it is still closing
    its own."""
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def rank_0s(value: str) -> str:
    """Rank 0's `value` on every process (a string such as a backend name), `value` when alone."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_weights(model: nn.Module) -> None:
    """Make every process start from rank 0's weights and buffers."""
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor, src=0)


def all_reduce_gradients(model: nn.Module) -> None:
    """Sum gradients across processes in one flat buffer (one collective per step)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _all_reduce(values: torch.Tensor, op: str) -> torch.Tensor:
    """`values` reduced in place across processes with `dist.ReduceOp.<op>`; unchanged in one process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values, op=getattr(dist.ReduceOp, op))
    return values


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    return _all_reduce(values, "SUM")


def all_reduce_max(values: torch.Tensor) -> torch.Tensor:
    return _all_reduce(values, "MAX")


def pick_device(name: str) -> torch.device:
    """The device a config's `device` names ("auto": CUDA when available, else the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is available")
    return torch.device(name)
