"""Chapter 6's training-step exercise: the checker passes the reference, fails plausible wrong
answers with the right message, and the reference is exactly the loss of ``VAE.forward``."""
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
