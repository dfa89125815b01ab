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
    z_e, e_k = args
    if (problem := tensor_problem(got, z_e.shape)) is not None:
        return problem
    if not torch.allclose(got.detach(), e_k.detach()):
        return "the forward value must be the code vector e_k"
    if not got.requires_grad:
        return "no gradient can flow back through your result"
    w = torch.arange(got.numel(), dtype=got.dtype).reshape(got.shape) / 7
    g_z, g_e = torch.autograd.grad((got * w).sum(), (z_e, e_k), allow_unused=True)
    if g_z is None or not torch.allclose(g_z, w):
        return "the gradient reaching z_e must equal the gradient at the output (straight through)"
    if g_e is not None and g_e.abs().sum() > 0:
        return "no gradient may reach the codebook through the straight-through path"
    return None


register(Exercise(
    id="vq.straight_through",
    title="the straight-through estimator: forward e_k, backward into z_e",
    cases=_st_cases,
    reference=lambda z_e, e_k: z_e + (e_k - z_e).detach(),
    properties=_st_properties,
    hint="Add to z_e a correction that has no gradient: z_e + (e_k − z_e).detach(). Its value is e_k; "
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
        m = torch.randn(k, d, generator=g, dtype=torch.float64) * N[:, None]
        cases.append((z, idx, N, m, gamma))
    return cases


def _ema_reference(z, idx, N, m, gamma):
    k = len(N)
    n = torch.bincount(idx, minlength=k).to(z.dtype)
    sums = torch.zeros_like(m).index_add_(0, idx, z)
    N_new = gamma * N + (1 - gamma) * n
    m_new = gamma * m + (1 - gamma) * sums
    return m_new / N_new[:, None]


register(Exercise(
    id="vq.ema_update",
    title="one EMA update of the codebook: N_i, m_i and e_i = m_i / N_i",
    cases=_ema_cases,
    reference=_ema_reference,
    hint="n_i counts the vectors assigned to code i (torch.bincount with minlength=K); Σ_j z_ij sums "
         "them (index_add_). N ← γN + (1−γ)n, m ← γm + (1−γ)Σz, e = m / N[:, None]. A code that "
         "received nothing keeps decaying, it is not skipped.",
    atol=1e-10,
))
