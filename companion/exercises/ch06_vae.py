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


def _negative_elbo_reference(x, mu, logvar, eps, decode):
    """−ELBO of a batch, nats per example: one reparameterised sample z = μ + σ ⊙ ε, the Bernoulli
    reconstruction −log p_θ(x|z) summed over pixels, plus the closed-form KL summed over code
    dimensions, both averaged over the batch (the loss of :class:`companion.models.VAE`)."""
    z = mu + torch.exp(0.5 * logvar) * eps                              # (B, m), differentiable in μ and log σ²
    recon = losses.reconstruction(decode(z), x, "bernoulli")           # (B,): summed over the pixels
    return (recon + losses.kl_normal_std_normal(mu, logvar)).mean()


def _negative_elbo_cases():
    g = seeded(64)
    cases = []
    for b, m, shape in ((4, 2, (1, 4, 4)), (3, 5, (1, 3, 5)), (6, 3, (2, 2, 3))):
        d = shape[0] * shape[1] * shape[2]
        layer = torch.nn.Linear(m, d).double()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(d, m, generator=g, dtype=torch.float64))
            layer.bias.copy_(torch.randn(d, generator=g, dtype=torch.float64))
        decode = torch.nn.Sequential(layer, torch.nn.Unflatten(1, shape))       # z (B, m) → logits (B, C, H, W)
        x = torch.rand(b, *shape, generator=g, dtype=torch.float64)            # grey levels in [0, 1]
        mu = torch.randn(b, m, generator=g, dtype=torch.float64).requires_grad_(True)
        logvar = (torch.randn(b, m, generator=g, dtype=torch.float64) - 1).requires_grad_(True)
        eps = torch.randn(b, m, generator=g, dtype=torch.float64)
        cases.append((x, mu, logvar, eps, decode))
    return cases


def _negative_elbo_variants(x, mu, logvar, eps, decode) -> dict[str, torch.Tensor]:
    """Values of common wrong answers, to name the mistake in the checker's message."""
    with torch.no_grad():
        std = torch.exp(0.5 * logvar)
        logits = decode(mu + std * eps)
        recon = losses.reconstruction(logits, x, "bernoulli")
        per_pixel = recon / x[0].numel()
        kl = losses.kl_normal_std_normal(mu, logvar)
        return {
            "the KL term is missing: the value is the reconstruction alone": recon.mean(),
            "the log-variance is used as the standard deviation (σ = exp(½ · logvar))":
                (losses.reconstruction(decode(mu + logvar * eps), x, "bernoulli") + kl).mean(),
            "the variance exp(logvar) is used as the standard deviation (σ = exp(½ · logvar))":
                (losses.reconstruction(decode(mu + logvar.exp() * eps), x, "bernoulli") + kl).mean(),
            "the reconstruction is averaged over the pixels; sum it over them": (per_pixel + kl).mean(),
            "the loss is summed over the batch; average it over the examples": (recon + kl).sum(),
            "the KL is averaged over the code dimensions; sum it over them":
                (recon + kl / mu.shape[1]).mean(),
        }


def _negative_elbo_properties(args, got) -> str | None:
    x, mu, logvar, eps, decode = args
    want = _negative_elbo_reference(*args)
    if (problem := tensor_problem(got, ())) is not None:
        return problem + " (one number: the batch's mean −ELBO)"
    if not torch.isfinite(got.detach()).all():
        return "your result is NaN or inf"
    if not torch.allclose(got.detach(), want.detach(), rtol=1e-6, atol=1e-8):
        for why, value in _negative_elbo_variants(*args).items():
            if torch.allclose(got.detach(), value, rtol=1e-6, atol=1e-8):
                return why
        return f"the value {got.item():.6g} differs from the −ELBO {want.item():.6g}"
    if not got.requires_grad:
        return "the result carries no gradient: is z computed from mu and logvar inside the graph?"
    g_got = torch.autograd.grad(got, (mu, logvar), allow_unused=True, retain_graph=True)
    g_want = torch.autograd.grad(want, (mu, logvar))
    for name, a, b in zip(("mu", "logvar"), g_got, g_want):
        if a is None or not torch.allclose(a, b, rtol=1e-6, atol=1e-9):
            return (f"the value is right but the gradient with respect to {name} is not: the encoder would "
                    f"learn only from the KL term. Compute z = mu + σ ⊙ eps in the graph (no .detach(), "
                    f"torch.no_grad() or .sample())")
    return None


register(Exercise(
    id="vae.negative_elbo",
    title="the negative ELBO of a batch, from μ, log σ², ε and the decoder",
    cases=_negative_elbo_cases,
    reference=_negative_elbo_reference,
    properties=_negative_elbo_properties,
    hint="z = mu + exp(½ · logvar) · eps; the reconstruction is binary cross-entropy with logits, "
         "summed over every pixel of an example; the KL is ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1); "
         "add the two per example, then average over the batch.",
))
