r"""The corruption process M_D(x̃ | x) of the denoising autoencoder (Vincent et al., 2008).

Each function maps a batch x (B, ...) to a corrupted copy x̃ of the same shape, drawing its
randomness from ``generator`` (or the global RNG) so that a seed repeats it exactly.

* :func:`masking_noise`: a fixed proportion ν of each example's dimensions, chosen at
  random, forced to 0 (the corruption of the original paper);
* :func:`gaussian_noise`: x̃ = x + σ ε with ε ~ N(0, I);
* :func:`salt_and_pepper`: a fixed proportion ν of each example's dimensions set to 0 or 1
  with equal probability.
"""
from __future__ import annotations

import math

import torch

from companion.runtime import plain

KINDS = ("masking", "gaussian", "salt_and_pepper")


def _check_x(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{name}: expected a batch (B, ...), got shape {tuple(x.shape)}")


def _check_proportion(p: float, name: str) -> float:
    p = plain(p)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: the proportion must be a number in [0, 1], got {p!r}")
    return p


def _chosen_dims(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """A boolean mask (B, ...) with exactly round(p·d) True entries per example, at random."""
    b, d = x.shape[0], x[0].numel()
    m = int(round(p * d))
    scores = torch.rand(b, d, generator=generator, device="cpu").to(x.device)
    chosen = torch.zeros(b, d, dtype=torch.bool, device=x.device)
    if m > 0:
        chosen.scatter_(1, scores.topk(m, dim=1).indices, True)
    return chosen.view_as(x)


def masking_noise(x: torch.Tensor, p: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Force a proportion ``p`` ∈ [0, 1] of each example's dimensions to 0, chosen at random."""
    _check_x(x, "masking_noise")
    p = _check_proportion(p, "masking_noise")
    return x.masked_fill(_chosen_dims(x, p, generator), 0.0)


def gaussian_noise(x: torch.Tensor, sigma: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add isotropic Gaussian noise of standard deviation ``sigma`` ≥ 0."""
    _check_x(x, "gaussian_noise")
    sigma = plain(sigma)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"gaussian_noise: sigma must be a finite number ≥ 0, got {sigma!r}")
    eps = torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    return x + sigma * eps


def salt_and_pepper(x: torch.Tensor, p: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Set a proportion ``p`` ∈ [0, 1] of each example's dimensions to 0 or 1 (a fair coin each)."""
    _check_x(x, "salt_and_pepper")
    p = _check_proportion(p, "salt_and_pepper")
    chosen = _chosen_dims(x, p, generator)
    coin = (torch.rand(x.shape, generator=generator, device="cpu") < 0.5).to(x.device, x.dtype)
    return torch.where(chosen, coin, x)


def corrupt(x: torch.Tensor, kind: str, level: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw x̃ ~ M_D(x̃ | x): ``kind`` is one of :data:`KINDS`, ``level`` its proportion or σ."""
    if kind == "masking":
        return masking_noise(x, level, generator=generator)
    if kind == "gaussian":
        return gaussian_noise(x, level, generator=generator)
    if kind == "salt_and_pepper":
        return salt_and_pepper(x, level, generator=generator)
    raise ValueError(f"unknown corruption {kind!r}; expected one of {KINDS}")
