"""Exercises of chapter 7 (β-VAE and disentanglement)."""
from __future__ import annotations

import torch

from companion import losses
from companion.exercises.core import Exercise, register, seeded


def _mig_cases():
    g = seeded(71)
    cases = []
    for d, k in ((5, 3), (10, 5), (2, 4)):
        mi = torch.rand(d, k, generator=g, dtype=torch.float64)
        cases.append((mi, mi.max(0).values + torch.rand(k, generator=g, dtype=torch.float64)))
    tie = torch.tensor([[0.5, 0.2], [0.5, 0.1], [0.1, 0.0]], dtype=torch.float64)   # a tie: gap 0 for factor 0
    cases.append((tie, torch.tensor([1.0, 0.5], dtype=torch.float64)))
    return cases


def _mig_reference(mi: torch.Tensor, entropies: torch.Tensor) -> torch.Tensor:
    top2 = mi.topk(2, dim=0).values                      # (2, F): largest, second largest
    return ((top2[0] - top2[1]) / entropies).mean()


register(Exercise(
    id="beta.mig",
    title="the mutual information gap from a mutual-information matrix",
    cases=_mig_cases,
    reference=_mig_reference,
    hint="For each factor a (a column), take the two largest entries of mi[:, a], subtract, divide by "
         "entropies[a]; then average over factors. torch.topk(mi, 2, dim=0) gives both at once.",
    atol=1e-10,
))


def _capacity_cases():
    g = seeded(72)
    return [(torch.rand((), generator=g, dtype=torch.float64) * 50, torch.rand((), generator=g, dtype=torch.float64) * 20,
             step, 25.0, 1000, gamma)
            for step, gamma in ((0, 1000.0), (250, 1000.0), (999, 10.0), (5000, 100.0))]


register(Exercise(
    id="beta.capacity_loss",
    title="Burgess et al.'s controlled-capacity loss with a linear schedule for C",
    cases=_capacity_cases,
    reference=lambda recon, kl, step, c_max, steps, gamma: recon + losses.controlled_capacity(
        kl, c_max * min(1.0, step / steps), gamma),
    hint="C = c_max · min(1, step / steps); the loss is recon + gamma · |kl − C|. Past the end of the "
         "schedule C stays at c_max.",
    atol=1e-9,
))


def _vote_cases():
    g = seeded(73)
    cases = []
    for L, d in ((64, 6), (16, 10), (32, 4)):
        scale = torch.rand(d, generator=g, dtype=torch.float64) * 5 + 1.0
        fixed = int(torch.randint(d, (), generator=g))
        small = (fixed + 1) % d
        scale[small] = 0.01                                     # a coordinate the model barely uses
        codes = torch.randn(L, d, generator=g, dtype=torch.float64) * scale
        codes[:, fixed] = codes[:, fixed] * 0.05 + 1.0          # this coordinate barely moves
        cases.append((codes, scale))
    return cases


def _vote_reference(codes: torch.Tensor, global_std: torch.Tensor) -> int:
    return int((codes / global_std).var(dim=0).argmin())


register(Exercise(
    id="beta.factor_vae_vote",
    title="the FactorVAE vote of one batch with a factor held fixed",
    cases=_vote_cases,
    reference=_vote_reference,
    hint="Divide every code dimension by its global standard deviation first (otherwise a dimension "
         "with a small scale always wins), take the variance over the batch (dim 0), return the "
         "index of the smallest as an int.",
))
