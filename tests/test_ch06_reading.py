"""Chapter 6's exercises (the training step, the KL between two Gaussians, free bits): each checker passes
the reference, fails plausible wrong answers with the right message, and the references are exactly the
losses of ``VAE.forward``."""
import math

import pytest
import torch
import torch.nn.functional as F

from companion.exercises import REGISTRY, check
from companion.models import VAE, VAEConfig


def _written_out(x, mu, logvar, eps, decode):
    """The chapter's solution, written from the formulas rather than from ``companion.losses``."""
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = F.binary_cross_entropy_with_logits(decode(z), x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)
    return (recon + kl).mean()


def _variant(*, kl=True, std="half", reduce_pixels="sum", reduce_batch="mean", detach=False, sample=False,
             kl_mean=False):
    def f(x, mu, logvar, eps, decode):
        sigma = {"half": torch.exp(0.5 * logvar), "logvar": logvar, "var": logvar.exp()}[std]
        if sample:
            z = torch.distributions.Normal(mu, sigma).sample()          # no reparameterisation
        else:
            z = mu + sigma * eps
        logits = decode(z.detach() if detach else z)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1)
        recon = bce.sum(1) if reduce_pixels == "sum" else bce.mean(1)
        per_dim = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1)
        total = recon + (kl * (per_dim.mean(1) if kl_mean else per_dim.sum(1)))
        return total.mean() if reduce_batch == "mean" else total.sum()
    return f


def test_reference_and_written_out_solution_pass():
    assert check("vae.negative_elbo", REGISTRY["vae.negative_elbo"].reference, verbose=False)
    assert check("vae.negative_elbo", _written_out, verbose=False)


@pytest.mark.parametrize("wrong,message", [
    (_variant(kl=False), "KL term is missing"),
    (_variant(std="logvar"), "log-variance is used as the standard deviation"),
    (_variant(std="var"), "variance exp(logvar) is used"),
    (_variant(reduce_pixels="mean"), "averaged over the pixels"),
    (_variant(reduce_batch="sum"), "summed over the batch"),
    (_variant(kl_mean=True), "KL is averaged over the code dimensions"),
    (_variant(detach=True), "gradient with respect to mu"),
    (_variant(sample=True), "differs from the −ELBO"),
])
def test_wrong_answers_fail_and_say_why(wrong, message):
    result = check("vae.negative_elbo", wrong, verbose=False)
    assert not result
    assert message in result.message, result.message


def test_no_graph_at_all_is_reported():
    def no_grad(*args):
        with torch.no_grad():
            return _written_out(*args)
    result = check("vae.negative_elbo", no_grad, verbose=False)
    assert not result and "no gradient" in result.message


def test_a_batch_of_losses_is_rejected():
    def per_example(x, mu, logvar, eps, decode):
        z = mu + torch.exp(0.5 * logvar) * eps
        return F.binary_cross_entropy_with_logits(decode(z), x, reduction="none").flatten(1).sum(1)
    result = check("vae.negative_elbo", per_example, verbose=False)
    assert not result and "expected shape ()" in result.message


@pytest.mark.parametrize("latent,hidden", [(2, (32,)), (5, (16, 8))])
def test_reference_equals_the_vae_loss_for_the_same_noise(latent, hidden):
    torch.manual_seed(3)
    vae = VAE(VAEConfig(latent_size=latent, hidden=hidden))
    x = torch.rand(7, 1, 28, 28)
    torch.manual_seed(11)
    loss = vae(x).loss
    torch.manual_seed(11)
    mu, logvar = vae.posterior_params(x)
    eps = torch.randn_like(mu)                                  # the draw VAE.forward made
    ref = REGISTRY["vae.negative_elbo"].reference(x, mu, logvar, eps, vae.decoder)
    assert torch.allclose(ref, loss, rtol=1e-6, atol=1e-4)
    assert torch.allclose(_written_out(x, mu, logvar, eps, vae.decoder), loss, rtol=1e-6, atol=1e-4)
    # and the gradients agree too
    g_ref = torch.autograd.grad(ref, list(vae.parameters()))
    torch.manual_seed(11)
    g_vae = torch.autograd.grad(vae(x).loss, list(vae.parameters()))
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(g_ref, g_vae))


# ---------------------------------------------------------------- the KL between two Gaussians (forward vs reverse)

def _kl_by_torch(mq, lq, mp, lp):
    dist = torch.distributions
    return dist.kl_divergence(dist.Independent(dist.Normal(mq, (0.5 * lq).exp()), 1),
                              dist.Independent(dist.Normal(mp, (0.5 * lp).exp()), 1))


def test_two_gaussian_kl_reference_matches_torch_and_the_standard_case():
    ref = REGISTRY["vae.kl_two_gaussians"].reference
    g = torch.Generator().manual_seed(0)
    mq, lq, mp, lp = (torch.randn(7, 4, generator=g, dtype=torch.float64) for _ in range(4))
    assert torch.allclose(ref(mq, lq, mp, lp), _kl_by_torch(mq, lq, mp, lp), atol=1e-12)
    zeros = torch.zeros_like(mq)                                # p = N(0, I): eq-kl-gauss
    assert torch.allclose(ref(mq, lq, zeros, zeros), 0.5 * (mq ** 2 + lq.exp() - lq - 1).sum(1), atol=1e-12)
    assert torch.allclose(ref(mq, lq, mq, lq), torch.zeros(7, dtype=torch.float64), atol=1e-12)


def test_the_chapters_asymmetry_example():
    """A q half as wide as p = N(0, 1): reverse ½(¼ − log ¼ − 1), forward log ½ + 2 − ½."""
    ref = REGISTRY["vae.kl_two_gaussians"].reference
    zero = torch.zeros(1, 1, dtype=torch.float64)
    narrow = torch.full((1, 1), math.log(0.25), dtype=torch.float64)
    reverse, forward = ref(zero, narrow, zero, zero).item(), ref(zero, zero, zero, narrow).item()
    assert abs(reverse - 0.5 * (0.25 - math.log(0.25) - 1)) < 1e-12
    assert abs(forward - (math.log(0.5) + 2 - 0.5)) < 1e-12
    assert forward > 2 * reverse


@pytest.mark.parametrize("wrong,message", [
    (lambda mq, lq, mp, lp: _kl_by_torch(mp, lp, mq, lq), "the other direction"),
    (lambda mq, lq, mp, lp: 2 * _kl_by_torch(mq, lq, mp, lp), "factor ½ is missing"),
    (lambda mq, lq, mp, lp: _kl_by_torch(mq, lq, mp, lp) / mq.shape[1], "averaged over the code dimensions"),
    (lambda mq, lq, mp, lp: 0.5 * (lp - lq + lq.exp() / lp.exp() + (mq - mp) ** 2 - 1).sum(1), "not divided by σ_p²"),
    (lambda mq, lq, mp, lp: _kl_by_torch(mq, 2 * lq, mp, 2 * lp), "exp(2 · logvar)"),
    (lambda mq, lq, mp, lp: _kl_by_torch(mq, lq, mp, lp)[:, None], "expected shape"),
])
def test_two_gaussian_kl_wrong_answers_say_why(wrong, message):
    result = check("vae.kl_two_gaussians", wrong, verbose=False)
    assert not result
    assert message in result.message, result.message


# ---------------------------------------------------------------- free bits

def test_free_bits_reference_is_the_vae_penalty():
    """VAE(free_bits=κ).loss − recon is the reference on the same batch and noise (β = 1, no annealing)."""
    torch.manual_seed(5)
    vae = VAE(VAEConfig(latent_size=6, hidden=(24,), free_bits=0.3))
    last = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias[:3] += 1.5                                    # μ of dimensions 0–2 away from 0: above the floor
    x = torch.rand(9, 1, 28, 28)
    torch.manual_seed(2)
    out = vae(x)
    mu, logvar = vae.posterior_params(x)
    per_dim = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).mean(0)
    assert (per_dim > 0.3).any() and (per_dim < 0.3).any()
    ref = REGISTRY["vae.free_bits_kl"].reference(mu, logvar, 0.3)
    assert torch.allclose(out.loss, out.terms["recon"] + ref, rtol=1e-6, atol=1e-4)


def test_free_bits_written_out_and_its_gradient():
    ref = REGISTRY["vae.free_bits_kl"].reference
    g = torch.Generator().manual_seed(1)
    mu = (torch.randn(10, 5, generator=g, dtype=torch.float64) * torch.tensor([0.01, 0.05, 1, 2, 0.02],
                                                                             dtype=torch.float64)).requires_grad_()
    logvar = torch.zeros(10, 5, dtype=torch.float64, requires_grad=True)
    kappa = 0.2
    per_dim = [0.5 * (mu[:, j] ** 2 + logvar[:, j].exp() - logvar[:, j] - 1).mean() for j in range(5)]
    written = sum(max(kappa, v.item()) for v in per_dim)
    value = ref(mu, logvar, kappa)
    assert abs(value.item() - written) < 1e-12
    grad = torch.autograd.grad(value, mu)[0]
    below = torch.tensor([v.item() < kappa for v in per_dim])
    assert below.any() and (~below).any()
    assert (grad[:, below] == 0).all() and (grad[:, ~below] != 0).all()   # no gradient below the floor


@pytest.mark.parametrize("wrong,message", [
    (lambda mu, lv, k: 0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1).mean(), "does not act on"),
    (lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).clamp(min=k).sum(1).mean(), "each example's KL"),
    (lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).sum(1).mean().clamp(min=k), "does not act on"),
    (lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(0).clamp(max=k).sum(), "capped at κ"),
    (lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).sum(0).clamp(min=k).sum(), "the batch is summed"),
    (lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(0).clamp(min=k).sum().detach(), "no gradient"),
    (lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(0).clamp(min=k), "expected shape ()"),
])
def test_free_bits_wrong_answers_say_why(wrong, message):
    result = check("vae.free_bits_kl", wrong, verbose=False)
    assert not result
    assert message in result.message, result.message


def test_free_bits_cases_have_dimensions_on_both_sides_of_the_floor():
    """Otherwise the checker could not tell a floor from no floor, or a per-example floor from a batch one."""
    per_example_differs = []
    for mu, logvar, kappa in REGISTRY["vae.free_bits_kl"].cases():
        per = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1)
        mean = per.mean(0)
        assert (mean < kappa).any() and (mean > kappa).any()
        per_example_differs.append(bool(((per < kappa) & (mean > kappa)[None]).any()))
    assert any(per_example_differs)                             # a per-example floor changes the value somewhere
