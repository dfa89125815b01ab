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
    return _scalar_with_gradient(
        got, want, (mu, logvar), _negative_elbo_variants(*args), rtol=1e-6, atol=1e-8, grad_atol=1e-9,
        one_number="one number: the batch's mean −ELBO", differs="the −ELBO",
        no_graph="is z computed from mu and logvar inside the graph?",
        wrong_gradient="the encoder would learn only from the KL term. Compute z = mu + σ ⊙ eps in the graph "
                       "(no .detach(), torch.no_grad() or .sample())")


def _scalar_with_gradient(got, want, inputs, variants: dict, *, rtol: float, atol: float, grad_atol: float,
                          one_number: str, differs: str, no_graph: str, wrong_gradient: str) -> str | None:
    """The checks of a scalar loss of (mu, logvar): a finite 0-dim tensor, its value (naming the
    mistake when it matches one of ``variants``), then its gradient with respect to each input.
    Compared in float64, so that a float32 answer that is right passes."""
    if (problem := tensor_problem(got, ())) is not None:
        return f"{problem} ({one_number})"
    if not torch.isfinite(got.detach()).all():
        return "your result is NaN or inf"
    close = lambda a, b, tol=atol: torch.allclose(a.double(), b.double(), rtol=rtol, atol=tol)   # noqa: E731
    if not close(got.detach(), want.detach()):
        for why, value in variants.items():
            if close(got.detach(), value):
                return why
        return f"the value {got.item():.6g} differs from {differs}, {want.item():.6g}"
    if not got.requires_grad:
        return f"the result carries no gradient: {no_graph}"
    g_got = torch.autograd.grad(got, inputs, allow_unused=True, retain_graph=True)
    g_want = torch.autograd.grad(want, inputs)
    for name, a, b in zip(("mu", "logvar"), g_got, g_want):
        if a is None or not close(a, b, grad_atol):
            return f"the value is right but the gradient with respect to {name} is not: {wrong_gradient}"
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


# --------------------------------------------------------------------------- the KL between two Gaussians

def _kl_two_gaussians_reference(mu_q, logvar_q, mu_p, logvar_p):
    """D_KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²)) per example, summed over the m dimensions:
    ½ Σ_j (log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1)."""
    return _kl_two_gaussians_per_dim(mu_q, logvar_q, mu_p, logvar_p).sum(1)


def _kl_two_gaussians_per_dim(mu_q, logvar_q, mu_p, logvar_p):
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)


def _kl_two_gaussians_cases():
    g = seeded(65)
    cases = []
    for b, m in ((4, 3), (2, 6), (5, 1)):
        cases.append(tuple(torch.randn(b, m, generator=g, dtype=torch.float64) for _ in range(4)))
    return cases


def _kl_two_gaussians_compare(args):
    mu_q, logvar_q, mu_p, logvar_p = args
    ref = _kl_two_gaussians_reference
    per_dim = _kl_two_gaussians_per_dim(*args)
    return {
        "this is D_KL(p ‖ q), the other direction: the expectation must be under q, the first argument":
            ref(mu_p, logvar_p, mu_q, logvar_q),
        "the factor ½ is missing": 2 * per_dim.sum(1),
        "the KL is averaged over the code dimensions; sum it over them": per_dim.mean(1),
        "the squared distance of the means is not divided by σ_p²":
            0.5 * (logvar_p - logvar_q + logvar_q.exp() / logvar_p.exp() + (mu_q - mu_p) ** 2 - 1).sum(1),
        "the variance is taken as exp(2 · logvar); logvar is log σ², so σ² = exp(logvar)":
            0.5 * (2 * logvar_p - 2 * logvar_q + ((2 * logvar_q).exp() + (mu_q - mu_p) ** 2) / (2 * logvar_p).exp()
                   - 1).sum(1),
    }


def _kl_two_gaussians_properties(args, got) -> str | None:
    want = _kl_two_gaussians_reference(*args)
    if (problem := tensor_problem(got, want.shape)) is not None:
        return problem + " (one KL per example, summed over the code dimensions)"
    got_ = got.detach().double()
    if not torch.isfinite(got_).all():
        return "your result contains NaN or inf"
    if torch.allclose(got_, want, rtol=1e-5, atol=1e-6):           # float32 answers are right too
        return None
    for why, value in _kl_two_gaussians_compare(args).items():
        if torch.isfinite(value).all() and torch.allclose(got_, value, rtol=1e-5, atol=1e-6):
            return why
    err = (got_ - want).abs().max().item()
    return f"values differ from D_KL(q ‖ p): largest absolute error {err:.3g}"


register(Exercise(
    id="vae.kl_two_gaussians",
    title="D_KL(q ‖ p) between two diagonal Gaussians, per example",
    cases=_kl_two_gaussians_cases,
    reference=_kl_two_gaussians_reference,
    properties=_kl_two_gaussians_properties,
    hint="per dimension, E_q[log q − log p] = ½ (log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1), "
         "with σ² = exp(logvar); sum over dim 1.",
))


# --------------------------------------------------------------------------- free bits

def _free_bits_reference(mu, logvar, kappa):
    """The free-bits KL term of :class:`companion.models.VAE`: Σ_j max(κ, KL_j), KL_j the batch's mean
    KL of code dimension j."""
    return losses.kl_normal_std_normal_per_dim(mu, logvar).mean(0).clamp(min=kappa).sum()


def _free_bits_cases():
    g = seeded(66)
    cases = []
    for b, scales, kappa in ((6, (0.05, 0.3, 1.0, 2.0), 0.25), (5, (0.02, 0.1, 0.8, 1.5, 0.5), 0.5),
                             (8, (0.2, 3.0, 0.05), 0.1)):
        m = len(scales)
        mu = (torch.randn(b, m, generator=g, dtype=torch.float64) * torch.tensor(scales, dtype=torch.float64))
        logvar = torch.randn(b, m, generator=g, dtype=torch.float64) * torch.tensor(scales, dtype=torch.float64)
        cases.append((mu.requires_grad_(True), logvar.requires_grad_(True), kappa))
    return cases


def _free_bits_variants(mu, logvar, kappa) -> dict[str, torch.Tensor]:
    """Values of common wrong answers, to name the mistake in the checker's message."""
    with torch.no_grad():
        per = losses.kl_normal_std_normal_per_dim(mu, logvar)                # (B, m)
        return {
            "the value is the plain KL, averaged over the batch: the floor κ does not act on each dimension's "
            "batch mean": per.sum(1).mean(),
            "the floor is applied to each example's KL of each dimension; apply it to the batch mean of "
            "each dimension": per.clamp(min=kappa).sum(1).mean(),
            "the KL is capped at κ (min) instead of floored at κ (max)": per.mean(0).clamp(max=kappa).sum(),
            "the batch is summed; average each dimension's KL over the batch": per.sum(0).clamp(min=kappa).sum(),
        }


def _free_bits_properties(args, got) -> str | None:
    mu, logvar, kappa = args
    want = _free_bits_reference(*args)
    return _scalar_with_gradient(       # float32 is right too
        got, want, (mu, logvar), _free_bits_variants(*args), rtol=1e-5, atol=1e-6, grad_atol=1e-8,
        one_number="one number for the batch", differs="Σ_j max(κ, KL_j)",
        no_graph="keep the computation in torch, on mu and logvar",
        wrong_gradient="a dimension whose batch-mean KL is below κ must get no gradient, the others the KL's own")


register(Exercise(
    id="vae.free_bits_kl",
    title="the free-bits KL term Σ_j max(κ, KL_j) of a batch",
    cases=_free_bits_cases,
    reference=_free_bits_reference,
    properties=_free_bits_properties,
    hint="KL_j = ½ (μ_j² + σ_j² − log σ_j² − 1) averaged over the batch (dim 0); then "
         "torch.clamp(KL_j, min=κ) and sum over the m dimensions.",
))
