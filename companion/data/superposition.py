r"""Features in superposition (Elhage et al., 2022), for chapter 11. Generated offline, seeded.

There are F features, each a fixed unit direction u_a in a space of only d < F dimensions.
An example switches each feature on independently with probability ρ, gives it a random
magnitude s_a, and adds up the directions of the features that are on:

    x = Σ_a s_a u_a,     s_a = 0 with probability 1 − ρ, else s_a ~ Uniform(s_min, 1).

With F > d the directions cannot be orthogonal, so no basis of the space names the
features. A sparse autoencoder is asked to find the directions u_a from x alone.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from companion.runtime import check_count, check_seed, plain


class Superposition(NamedTuple):
    """``x`` (N, d) float32 examples; ``s`` (N, F) their feature magnitudes s_a (zero where a
    feature is off); ``directions`` (F, d) the true unit directions u_a, one per row."""

    x: torch.Tensor
    s: torch.Tensor
    directions: torch.Tensor


def feature_directions(n_features: int, dim: int, *, seed: int = 0) -> torch.Tensor:
    """``n_features`` random unit directions in ``dim`` dimensions, (n_features, dim): rows of
    Gaussian noise, normalised (so their pairwise cosines are about ±1/√dim)."""
    seed = check_seed(seed)
    n_features, dim = check_count("n_features", n_features), check_count("dim", dim)
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n_features, dim, generator=g)
    return d / d.norm(dim=1, keepdim=True)


def superposition(n: int, *, n_features: int | None = None, dim: int | None = None, rho: float = 0.03, s_min: float = 0.5,
                  directions: torch.Tensor | None = None, seed: int = 0) -> Superposition:
    """``n`` examples of ``n_features`` sparse features embedded in ``dim`` dimensions.

    Args:
        n: number of examples.
        n_features, dim: F and d, the feature count and the dimension of x (128 and 32 unless
            given). The directions are drawn with ``seed`` unless ``directions`` (F, d) is
            given; then F and d, when given, must agree with it.
        rho: ρ, the probability that a feature is on, in (0, 1].
        s_min: the smallest magnitude of a feature that is on, in [0, 1).
        seed: draws the directions (when not given) and the examples.
    """
    seed = check_seed(seed)
    n = check_count("n", n)
    rho, s_min = plain(rho), plain(s_min)
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho <= 1:
        raise ValueError(f"rho must be a probability in (0, 1], got {rho!r}")
    if isinstance(s_min, bool) or not isinstance(s_min, (int, float)) or not 0 <= s_min < 1:
        raise ValueError(f"s_min must lie in [0, 1), got {s_min!r}")
    if directions is None:
        directions = feature_directions(128 if n_features is None else n_features, 32 if dim is None else dim, seed=seed)
    elif not isinstance(directions, torch.Tensor) or directions.dim() != 2 or not directions.is_floating_point():
        raise ValueError(f"directions must be a float tensor (n_features, dim), got "
                         f"{getattr(directions, 'shape', type(directions).__name__)}")
    elif not torch.isfinite(directions).all() or (directions.norm(dim=1) - 1).abs().max() > 1e-4:
        raise ValueError("directions must be finite unit vectors, one per row")
    for name, given, have in (("n_features", n_features, directions.shape[0]), ("dim", dim, directions.shape[1])):
        if given is not None and check_count(name, given) != have:
            raise ValueError(f"{name}={given} disagrees with directions of shape {tuple(directions.shape)}")
    directions = directions.detach().to(torch.float32).clone()
    g = torch.Generator().manual_seed(seed + 1)
    on = torch.rand(n, len(directions), generator=g) < rho
    s = torch.where(on, s_min + (1 - s_min) * torch.rand(n, len(directions), generator=g), torch.zeros(()))
    return Superposition(s @ directions, s, directions)
