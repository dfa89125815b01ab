"""Exercises of chapter 6 (the variational autoencoder)."""
from __future__ import annotations

import math

import torch

from companion import losses
from companion.exercises.core import Exercise, register, seeded, tensor_problem



def _reparam_cases():
    g = seeded(61)
    return [(torch.randn(b, k, generator=g, dtype=torch.float64).requires_grad_(True),
             torch.randn(b, k, generator=g, dtype=torch.float64).requires_grad_(True),
             torch.randn(b, k, generator=g, dtype=torch.float64)) for b, k in ((4, 3), (2, 5))]


def _reparam_properties(args, got) -> str | None:
    mu, logvar, eps = args
    want = mu.detach() + torch.exp(0.5 * logvar.detach()) * eps
    if (problem := tensor_problem(got, want.shape)) is not None:
        return problem
    if not torch.allclose(got.detach(), want):
        return "values differ from μ + σ ⊙ ε with σ = exp(½ · logvar)"
    if not got.requires_grad:
        return "the result is not connected to mu and logvar: no gradient can flow"
    g_mu, g_lv = torch.autograd.grad(got.sum(), (mu, logvar), allow_unused=True)
    if g_mu is None or g_lv is None or not torch.allclose(g_mu, torch.ones_like(mu)) \
            or not torch.allclose(g_lv, 0.5 * torch.exp(0.5 * logvar.detach()) * eps):
        return "the gradients with respect to mu and logvar are wrong"
    return None


register(Exercise(
    id="vae.reparameterize",
    title="z = μ + σ ⊙ ε from a mean and a log-variance",
    cases=_reparam_cases,
    reference=lambda mu, logvar, eps: mu + torch.exp(0.5 * logvar) * eps,
    properties=_reparam_properties,
    hint="σ = exp(½ log σ²); keep the computation in torch so gradients reach mu and logvar.",
))


def _kl_cases():
    g = seeded(62)
    return [(torch.randn(b, k, generator=g, dtype=torch.float64), torch.randn(b, k, generator=g, dtype=torch.float64))
            for b, k in ((5, 2), (3, 8))]


register(Exercise(
    id="vae.gaussian_kl",
    title="KL(N(μ, diag σ²) ‖ N(0, I)) per example",
    cases=_kl_cases,
    reference=lambda mu, logvar: losses.kl_normal_std_normal(mu, logvar),
    hint="½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), with σ_j² = exp(logvar_j); sum over dim 1.",
    atol=1e-10,
))


def _iw_cases():
    g = seeded(63)
    return [(torch.randn(k, b, generator=g, dtype=torch.float64) * 3 + offset,)
            for k, b, offset in ((10, 4, 0.0), (100, 3, -1000.0), (1, 5, -20.0))]


register(Exercise(
    id="vae.iw_bound",
    title="the importance-weighted bound from log weights, without underflow",
    cases=_iw_cases,
    reference=lambda log_w: torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0]),
    hint="log (1/k) Σ_i exp(log_w_i) = logsumexp(log_w, dim=0) − log k; torch.logsumexp subtracts "
         "the maximum first, so nothing underflows.",
    atol=1e-8,
))
