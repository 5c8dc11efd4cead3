"""Tiny Recursive Model (TRM): recursive reasoning with tiny networks (arXiv 2510.04871)."""

__version__ = "0.1.0"
