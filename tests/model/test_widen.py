"""Widening a trained TRM-MLP (trm/model/widen.py): the same answers at a larger hidden size."""

import pytest
import torch

from tests.eval.fixtures import tiny_model
from trm.config import ModelConfig
from trm.errors import ConfigError
from trm.model.loss import act_loss
from trm.model.trm import TRM
from trm.model.widen import widen

# tests/eval/fixtures.py's tiny TRM-MLP (D=32, T=2, n=2), narrower, in float32 and without exploration
NARROW = dict(hidden_size=16, N_sup=3, halt_exploration_prob=0.0, forward_dtype="float32")


def narrow_model(**changes) -> TRM:
    return tiny_model(11, 16, halting=False, **{**NARROW, **changes})


def batch_for(config: ModelConfig, B: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(1, config.vocab_size, (B, config.seq_len), generator=g)
    labels = torch.randint(1, config.vocab_size, (B, config.seq_len), generator=g)
    return {"inputs": inputs, "labels": labels, "puzzle_identifiers": torch.zeros(B, dtype=torch.long)}


def trained_narrow(**changes) -> TRM:
    """A narrow model whose weights are not at their initial values (the q head starts at zero)."""
    model = narrow_model(**changes)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize(
    "changes", [{}, {"pos_encodings": "learned"}, {"separate_nets": True}, {"latent": "multiscale_z"}]
)
def test_a_widened_model_answers_as_the_narrow_one(factor, changes):
    narrow = trained_narrow(hidden_size=64, **changes)  # its MLP gains units at 128 and 192: no noise needed
    wide = widen(narrow, narrow.config.model_copy(update={"hidden_size": 64 * factor})).eval()
    assert wide.num_parameters() > narrow.num_parameters()
    batch = batch_for(narrow.config)
    with torch.no_grad():
        a, b = narrow.rollout(batch, 3), wide.rollout(batch, 3)
    # The widened weights are the narrow ones scaled by 1/r or 1/sqrt(r) and stored in float32:
    # their rounding (about 1e-7 relative) is all that differs. Recursion amplifies it (about 15x
    # per supervision step on this random model), so the first step is compared to 1e-4 of the
    # logits' scale, far below a wrong rule's error (order 1), and later steps by their answers
    # (all but near-ties of this random model).
    scale = a["logits"].abs().max()
    torch.testing.assert_close(b["logits"][0], a["logits"][0], rtol=0, atol=1e-4 * scale)
    torch.testing.assert_close(b["q_halt_logits"][0], a["q_halt_logits"][0], rtol=0, atol=1e-4 * scale)
    assert (b["logits"].argmax(-1) == a["logits"].argmax(-1)).float().mean() > 0.99


def test_noise_changes_the_answers_a_little_and_is_seeded():
    narrow = trained_narrow()
    config = narrow.config.model_copy(update={"hidden_size": 32})
    exact = widen(narrow, config, noise=1e-6)  # no new MLP units at 32: a noise is needed
    noisy, again = widen(narrow, config, noise=1e-3, seed=5), widen(narrow, config, noise=1e-3, seed=5)
    assert all(torch.equal(noisy.state_dict()[k], again.state_dict()[k]) for k in noisy.state_dict())
    batch = batch_for(narrow.config)
    with torch.no_grad():
        a, b = exact.eval().rollout(batch, 1)["logits"], noisy.eval().rollout(batch, 1)["logits"]
    assert 0 < (a - b).abs().max() < 0.05 * a.abs().max()


@pytest.mark.parametrize("narrow_width, noise", [(16, 1e-3), (64, 0.0)])
def test_training_separates_the_repeated_channels(narrow_width, noise):
    """Repeated channels with repeated weights would get repeated gradients and stay copies. At
    D=16 -> 32 the channel MLP keeps its 256 hidden units and the noise parts them; at 64 -> 128 it
    gains 256 units with random input weights, which part them without noise."""
    narrow = trained_narrow(hidden_size=narrow_width)
    wide = widen(narrow, narrow.config.model_copy(update={"hidden_size": 2 * narrow_width}), noise).train()
    optimizer = torch.optim.SGD(wide.parameters(), lr=0.1)
    batch = batch_for(wide.config)
    for _ in range(3):
        carry, out = wide.step(wide.initial_carry(batch), batch)
        loss = act_loss(out, carry, wide.config.loss)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    embedding = wide.embed_tokens.weight.detach()
    assert (embedding[:, :narrow_width] - embedding[:, narrow_width:]).abs().max() > 1e-4


def test_without_new_units_or_noise_the_copies_would_stay_tied():
    narrow = trained_narrow()
    with pytest.raises(ConfigError, match=r"gains no hidden units.*noise above 0"):
        widen(narrow, narrow.config.model_copy(update={"hidden_size": 32}))


@pytest.mark.parametrize(
    "narrow_changes, wide_changes, message",
    [
        ({}, {"hidden_size": 24}, "a multiple of 16"),
        ({}, {"hidden_size": 8}, "a multiple of 16"),
        ({"mixer": "attention", "pos_encodings": "rope"}, {"hidden_size": 32}, "MLP mixer"),
        ({"puzzle_emb_ndim": 16, "num_puzzle_identifiers": 3}, {"hidden_size": 32}, "without puzzle embeddings"),
        ({}, {"hidden_size": 32, "num_layers": 3}, "these differ too: num_layers"),
        ({}, {"hidden_size": 32, "expansion": 2.0}, "these differ too: expansion"),
    ],
)
def test_widening_refuses_what_it_cannot_keep(narrow_changes, wide_changes, message):
    narrow = narrow_model(**narrow_changes)
    with pytest.raises(ConfigError, match=message):
        widen(narrow, narrow.config.model_copy(update=wide_changes))
