"""Exercises of chapter 8 (VQ-VAE)."""
from __future__ import annotations

import torch

from companion.exercises.core import Exercise, register, seeded, tensor_problem
from companion.models.vq import nearest_code


def _nearest_cases():
    g = seeded(81)
    cases = [(torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g, dtype=torch.float64))
             for n, k, d in ((20, 5, 3), (100, 64, 16), (7, 1, 2))]
    big = torch.randn(50, 4, generator=g, dtype=torch.float64) * 100 + 300   # large norms: dot products mislead
    cases.append((big, big[:9] + 0.5))
    return cases


register(Exercise(
    id="vq.nearest_code",
    title="the index of the nearest code vector, without a Python loop",
    cases=_nearest_cases,
    reference=lambda z, codebook: nearest_code(z, codebook),
    hint="‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖²: one matrix product z @ codebook.T gives every z·e; add the "
         "squared norms (broadcast to (N, K)) and take argmin over dim 1. The largest dot product alone "
         "is not the nearest code.",
))


def _st_cases():
    g = seeded(82)
    return [(torch.randn(b, d, generator=g, dtype=torch.float64).requires_grad_(True),
             torch.randn(b, d, generator=g, dtype=torch.float64).requires_grad_(True))
            for b, d in ((6, 3), (2, 8))]


def _st_properties(args, got) -> str | None:
    z_e, e_c = args
    if (problem := tensor_problem(got, z_e.shape)) is not None:
        return problem
    if not torch.allclose(got.detach(), e_c.detach()):
        return "the forward value must be the code vector e_c"
    if not got.requires_grad:
        return "no gradient can flow back through your result"
    w = torch.arange(got.numel(), dtype=got.dtype).reshape(got.shape) / 7
    g_z, g_e = torch.autograd.grad((got * w).sum(), (z_e, e_c), allow_unused=True)
    if g_z is None or not torch.allclose(g_z, w):
        return "the gradient reaching z_e must equal the gradient at the output (straight through)"
    if g_e is not None and g_e.abs().sum() > 0:
        return "no gradient may reach the codebook through the straight-through path"
    return None


register(Exercise(
    id="vq.straight_through",
    title="the straight-through estimator: forward e_c, backward into z_e",
    cases=_st_cases,
    reference=lambda z_e, e_c: z_e + (e_c - z_e).detach(),
    properties=_st_properties,
    hint="Add to z_e a correction that has no gradient: z_e + (e_c − z_e).detach(). Its value is e_c; "
         "its gradient with respect to z_e is the identity.",
))


def _ema_cases():
    g = seeded(83)
    cases = []
    for n, k, d, gamma in ((12, 4, 2, 0.99), (30, 6, 3, 0.9), (5, 3, 2, 0.5)):
        z = torch.randn(n, d, generator=g, dtype=torch.float64)
        idx = torch.randint(k, (n,), generator=g)
        idx[:k - 1] = torch.arange(k - 1)                       # every code but the last is used
        idx[idx == k - 1] = 0
        N = torch.rand(k, generator=g, dtype=torch.float64) * 5 + 1
        a = torch.randn(k, d, generator=g, dtype=torch.float64) * N[:, None]      # running sums a_c
        cases.append((z, idx, N, a, gamma))
    return cases


def _ema_reference(z, idx, N, a, gamma):
    size = torch.bincount(idx, minlength=len(N)).to(z.dtype)             # |S_c|
    sums = torch.zeros_like(a).index_add_(0, idx, z)                    # the sum over S_c
    N_new = gamma * N + (1 - gamma) * size
    a_new = gamma * a + (1 - gamma) * sums
    return a_new / N_new[:, None]


register(Exercise(
    id="vq.ema_update",
    title="one EMA update of the codebook: N_c, a_c and e_c = a_c / N_c",
    cases=_ema_cases,
    reference=_ema_reference,
    hint="|S_c| counts the vectors assigned to code c (torch.bincount with minlength=K); index_add_ sums "
         "them. N ← γN + (1−γ)|S|, a ← γa + (1−γ)Σz, e = a / N[:, None]. A code that received nothing "
         "keeps decaying, it is not skipped.",
    atol=1e-10,
))
