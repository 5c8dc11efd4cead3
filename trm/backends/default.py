"""The default backend: PyTorch's own kernels on every device, in the paper's (B, S, D) layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Backend:
    """PyTorch's own kernels (MKL or oneDNN as PyTorch picks on CPU, cuBLAS on GPU).

    Subclasses override the products they do faster. One with `sequence_major` set runs the
    MLP-mixer blocks on (S, B, D) states and multiplies the token mixer's weights from the left
    (`left_matmul`); the default runs them as the paper writes them, transposing (B, S, D).
    """

    name = "default"
    sequence_major = False

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x @ weight.T (+ bias), the weights cast to the activations' dtype."""
        return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"backend {self.name!r}"
