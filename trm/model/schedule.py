"""The network calls of one supervision step, defined once for the model, FLOP counting and halting.

One supervision step (trm-spec section 3) is T cycles of n latent updates z = net(z, y + x) and
one answer update y = net(y, z): T * (n + 1) network calls, 21 for T=3, n=6. Direct prediction
(latent "none", n = 0) is T answer updates y = net(y, x). The first T-1 cycles run without
gradient; in the last one every call carries gradient, or with HRM's one-step gradient only
the last latent update and the answer update.
"""

from __future__ import annotations

from dataclasses import dataclass

from trm.config import ModelConfig


@dataclass(frozen=True)
class Schedule:
    T: int  # cycles
    n: int  # latent updates per cycle (0 for direct prediction)
    answer_net: str  # the network of the answer update: "net_y" (net when there is no second one) or "net"
    graded: int  # calls at the end of the last cycle that carry gradient (at most n + 1)

    @property
    def calls(self) -> int:
        """Network calls per supervision step."""
        return self.T * (self.n + 1)

    @property
    def networks(self) -> list[str]:
        """The network of each call in order, "net" or "net_y"."""
        return (["net"] * self.n + [self.answer_net]) * self.T


def schedule(config: ModelConfig) -> Schedule:
    """The schedule of `config`'s recursion."""
    # single_z keeps its one state in y's slot and updates it with the shared network only.
    answer_net = "net" if config.latent == "single_z" else "net_y"
    graded = 2 if config.one_step_gradient else config.n + 1
    return Schedule(T=config.T, n=config.n, answer_net=answer_net, graded=min(graded, config.n + 1))
