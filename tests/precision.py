"""Tolerances derived from the floating-point precision a test actually runs in.

Two runs that compute the same values in a different order (another batch split, another matrix
kernel, a compiled graph) differ by rounding only. With unit roundoff u (2^-24 in float32, 2^-8
in bfloat16), a sum of K terms is off by at most K * u of the sum of their magnitudes (Higham's
gamma_K), and in practice by about sqrt(K) * u, since independent roundings add like a random walk.
"""

import math

import torch


def unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2


def worst_case_sum_error(dtype: torch.dtype, terms: int) -> float:
    """Higham's gamma_K: the largest relative error of a K-term sum (of |terms|) in `dtype`."""
    ku = terms * unit_roundoff(dtype)
    return ku / (1 - ku)


def reordering_tolerance(dtype: torch.dtype, terms: int, sigmas: float = 4.0) -> float:
    """The relative difference (to the largest magnitude involved) two evaluation orders of K-term
    sums may show: `sigmas` standard deviations of a random walk of K roundings."""
    return sigmas * math.sqrt(terms) * unit_roundoff(dtype)
