"""Exercises of chapter 3 (the sparse autoencoder)."""
from __future__ import annotations

import torch

from companion import losses
from companion.exercises.core import Exercise, register, seeded



def _kl_cases():
    g = seeded(31)
    return [(rho, torch.rand(n, generator=g, dtype=torch.float64) * 0.98 + 0.01)
            for rho, n in ((0.05, 20), (0.25, 9), (0.5, 5), (0.9, 7))]


register(Exercise(
    id="sae.kl_bernoulli",
    title="KL divergence between Bernoulli(ρ) and Bernoulli(ρ̂), elementwise",
    cases=_kl_cases,
    reference=lambda rho, rho_hat: losses.kl_bernoulli(rho, rho_hat),
    hint="ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)), natural logarithms, one value per entry of "
         "rho_hat; note the order: the target ρ comes first.",
    atol=1e-8,
))


def sparsity_penalty_reference(z: torch.Tensor, rho: float, beta: float) -> torch.Tensor:
    """β Σ_j KL(ρ ‖ ρ̂_j) with ρ̂_j the batch mean of unit j's activations z (B, m)."""
    return beta * losses.kl_bernoulli(rho, z.mean(dim=0)).sum()


def _penalty_cases():
    g = seeded(32)
    return [(torch.sigmoid(torch.randn(b, s, generator=g, dtype=torch.float64) * 2 - 1), rho, beta)
            for b, s, rho, beta in ((64, 10, 0.05, 3.0), (16, 4, 0.2, 0.5), (8, 30, 0.1, 1.0))]


register(Exercise(
    id="sae.sparsity_penalty",
    title="the sparsity penalty β Σ_j KL(ρ ‖ ρ̂_j) of one layer",
    cases=_penalty_cases,
    reference=sparsity_penalty_reference,
    hint="first average each unit's activation over the batch (dim 0) to get ρ̂_j, then sum "
         "KL(ρ ‖ ρ̂_j) over the units and multiply by β; the result is a 0-dim tensor.",
    atol=1e-8,
))
