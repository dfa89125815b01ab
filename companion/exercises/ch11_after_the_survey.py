"""Exercises of chapter 11 (TopK sparse autoencoders and finite scalar quantisation)."""
from __future__ import annotations

import torch

from companion.exercises.core import Exercise, register, seeded
from companion.metrics import feature_recovery
from companion.models import FiniteScalarQuantizer


def best_cosines_reference(units: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    return feature_recovery(units, features)["max_cos"]


def _cosine_cases():
    g = seeded(111)
    out = []
    for m, f, d in ((12, 5, 4), (30, 10, 8), (3, 6, 3)):
        units = torch.randn(m, d, generator=g) * torch.linspace(0.2, 3.0, m)[:, None]   # not unit length
        out.append((units, torch.nn.functional.normalize(torch.randn(f, d, generator=g), dim=1)))
    return out


register(Exercise(
    id="sae.best_cosine",
    title="for each true feature, the cosine of the unit direction that matches it best",
    cases=_cosine_cases,
    reference=best_cosines_reference,
    hint="normalise the rows of both matrices, take features @ units.T (F × m cosines) and the "
         "maximum over the units (dim=1). The units are not unit length: normalise them first.",
))


def fsq_round_reference(z: torch.Tensor, levels: int) -> torch.Tensor:
    q = FiniteScalarQuantizer((levels,))
    return q(z.reshape(-1, 1, 1, 1)).z_q.reshape(z.shape).detach()


def _fsq_cases():
    g = seeded(112)
    return [(torch.randn(50, generator=g) * 3, levels) for levels in (5, 8, 3, 4, 2)]


register(Exercise(
    id="fsq.round",
    title="bound one dimension with tanh and round it to ℓ levels, as FSQ does",
    cases=_fsq_cases,
    reference=fsq_round_reference,
    hint="half = (ℓ − 1)/2; offset = 0.5 for an even ℓ, else 0; shift = atanh(0.999 · offset / half); "
         "h = half·tanh(z + shift) − offset; return round(h) / (ℓ // 2).",
))
