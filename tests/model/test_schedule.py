"""The schedule of one supervision step: what the model runs, FLOP counting counts and halting charges."""

import pytest
import torch

from trm.config import ModelConfig
from trm.model import TRM
from trm.model.schedule import schedule

SMALL = dict(vocab_size=11, seq_len=8, hidden_size=16, num_heads=2)


@pytest.mark.parametrize(
    "fields, calls, graded, networks",
    [
        (dict(T=3, n=6), 21, 7, (["net"] * 6 + ["net_y"]) * 3),
        (dict(T=2, n=2, separate_nets=True, one_step_gradient=True), 6, 2, ["net", "net", "net_y"] * 2),
        (dict(T=2, n=3, latent="single_z", separate_nets=True), 8, 4, ["net"] * 8),
        (dict(T=1, n=3, latent="multiscale_z"), 4, 4, ["net"] * 3 + ["net_y"]),
        (dict(T=3, n=0, latent="none"), 3, 1, ["net_y"] * 3),
    ],
)
def test_schedule_of_each_variant(fields, calls, graded, networks):
    steps = schedule(ModelConfig(**SMALL, **fields))
    assert (steps.calls, steps.graded, steps.networks) == (calls, graded, networks)


@pytest.mark.parametrize("fields", [dict(T=2, n=2), dict(T=2, n=3, one_step_gradient=True, separate_nets=True),
                                    dict(T=2, n=2, latent="single_z"), dict(T=3, n=0, latent="none")])
def test_the_model_runs_the_schedule(fields):
    """Each network call in order, and whether it builds a graph, is as the schedule says."""
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL, **fields)).train()
    seen = []
    for name in ("net", "net_y"):
        net = getattr(model, name)
        if net is not None:
            net.register_forward_hook(lambda module, args, out, name=name: seen.append((name, out.requires_grad)))
    batch = {"inputs": torch.ones(2, 8, dtype=torch.long), "puzzle_identifiers": torch.zeros(2, dtype=torch.long)}
    carry = model.initial_carry(batch)
    model.supervision_step(carry.y, carry.z, batch)
    steps = schedule(model.config)
    names = [n if n == "net" or model.net_y is not None else "net" for n in steps.networks]
    assert [name for name, _ in seen] == names
    assert [grad for _, grad in seen] == [i >= steps.calls - steps.graded for i in range(steps.calls)]
