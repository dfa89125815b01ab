"""Exercises of chapter 10 (TD-VAE)."""
from __future__ import annotations

import torch
from torch import distributions as D

from companion.exercises.core import Exercise, register, seeded


def _gaussian(g, b, d):
    return D.Independent(D.Normal(torch.randn(b, d, generator=g, dtype=torch.float64),
                                  torch.rand(b, d, generator=g, dtype=torch.float64) + 0.3), 1)


def _j_cases():
    g = seeded(101)
    cases = []
    for b, d, pixels in ((4, 3, 10), (7, 2, 5)):
        decoder = D.Independent(D.Bernoulli(logits=torch.randn(b, pixels, generator=g, dtype=torch.float64),
                                            validate_args=False), 1)
        x2 = torch.rand(b, pixels, generator=g, dtype=torch.float64)
        z1, z2 = (torch.randn(b, d, generator=g, dtype=torch.float64) for _ in range(2))
        cases.append((x2, z1, z2, decoder, _gaussian(g, b, d), _gaussian(g, b, d), _gaussian(g, b, d),
                      _gaussian(g, b, d)))
    return cases


def _j_reference(x2, z1, z2, p_D, p_B1, p_T, p_B2, p_S):
    return (p_D.log_prob(x2) + p_B1.log_prob(z1) + p_T.log_prob(z2)
            - p_B2.log_prob(z2) - p_S.log_prob(z1))


register(Exercise(
    id="tdvae.assemble_J",
    title="The bound −L_TD(t1, t2) (the paper's J) from the four distributions and the two sampled states",
    cases=_j_cases,
    reference=_j_reference,
    hint="Five log-densities, one per sequence: + log p_D(x_t2 | z_t2) + log p_B(z_t1 | h_t1) + log p_T(z_t2 | z_t1) "
         "− log p_B(z_t2 | h_t2) − log p_S(z_t1 | z_t2, h_t1, h_t2). Each argument p_… is a distribution "
         "over a whole vector (Independent), so .log_prob returns one number per row: no further sum.",
    atol=1e-10,
))


def _pairs_cases():
    return [(20_000, 8, 1, 4, seeded(102)), (20_000, 12, 2, 5, seeded(103)), (20_000, 5, 1, 1, seeded(104))]


def _pairs_properties(args, got) -> str | None:
    n, length, lo, hi, _ = args
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        return "expected a pair of tensors (t1, t2)"
    t1, t2 = got
    if t1.shape != (n,) or t2.shape != (n,) or t1.is_floating_point() or t2.is_floating_point():
        return f"t1 and t2 must be integer tensors of shape ({n},)"
    delta = t2 - t1
    if (t1 < 0).any() or (t2 > length - 1).any():
        return f"every pair must lie inside the sequence: 0 ≤ t1 and t2 ≤ {length - 1}"
    if (delta < lo).any() or (delta > hi).any():
        return f"every jump t2 − t1 must lie in {lo}…{hi}"
    for d in range(lo, hi + 1):
        share = (delta == d).float().mean().item()
        if abs(share - 1 / (hi - lo + 1)) > 0.03:
            return f"jumps must be uniform on {lo}…{hi}: δ = {d} has share {share:.3f}"
        starts = t1[delta == d]
        counts = torch.bincount(starts, minlength=length - d).float()
        if len(counts) != length - d or counts.min() < 0.7 * counts.mean():
            return (f"given δ = {d}, t1 must be uniform on 0…{length - 1 - d}: "
                    f"counts {counts.long().tolist()}")
    return None


def _pairs_reference(n, length, lo, hi, generator):
    delta = torch.randint(lo, hi + 1, (n,), generator=generator)
    t1 = (torch.rand(n, generator=generator) * (length - delta)).long()
    return t1, t1 + delta


register(Exercise(
    id="tdvae.sample_pairs",
    title="training pairs (t1, t2): δ uniform on its range, then t1 uniform where t1 + δ fits",
    cases=_pairs_cases,
    reference=_pairs_reference,
    properties=_pairs_properties,
    hint="Draw δ first (torch.randint(lo, hi + 1, (n,), generator=generator)), then t1 uniform on "
         "0 … T−1−δ: (torch.rand(n, generator=generator) * (T − δ)).long(). Drawing t1 on 0 … T−1−δ_max "
         "never uses the late steps for short jumps; drawing t1 first and clipping t2 skews the jumps.",
))
