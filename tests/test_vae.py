"""The VAE core (for chapter 6): model contract, closed-form KL, importance-weighted bound."""
import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

import companion
from companion import losses
from companion.metrics import importance_weighted_log_likelihood
from companion.models import VAE, VAEConfig
from companion.models.linear_gaussian import LinearGaussianModel
from companion.train import fit, load_checkpoint, save_checkpoint


def test_closed_form_kl_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    ours = losses.kl_normal_std_normal(mu, logvar)
    assert torch.allclose(ours, kl_divergence(q, p), atol=1e-12)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert torch.allclose(ours, mc, rtol=0.02, atol=0.01)
    with pytest.raises(ValueError):
        losses.kl_normal_std_normal(mu, logvar[:, :3])


def test_vae_output_contract_and_loss_terms():
    companion.seed_everything(0)
    m = VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=3, hidden=(16,), beta=2.0))
    x = torch.rand(5, 1, 8, 8)
    torch.manual_seed(1)
    out = m(x)
    assert set(out.terms) == {"recon", "kl"} and out.z.shape == (5, 3) and out.x_hat.shape == x.shape
    assert torch.allclose(out.loss, out.terms["recon"] + 2.0 * out.terms["kl"])
    # recon is the Bernoulli negative log-likelihood of x under the decoder at the sampled z
    logits = m.decoder(out.z)
    explicit = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    assert torch.allclose(out.terms["recon"], explicit, atol=1e-4)
    q = m.encode(x)
    assert q.batch_shape == (5,) and q.event_shape == (3,)
    assert m.decode(out.z).event_shape == (1, 8, 8)


@pytest.mark.parametrize("kwargs,field", [
    (dict(latent_size=-2), "latent_size"), (dict(latent_size=0), "latent_size"), (dict(hidden=(0,)), "hidden"),
    (dict(likelihood="poisson"), "likelihood"), (dict(beta=-1.0), "beta"), (dict(decoder_std=0.0), "decoder_std"),
    (dict(kl_warmup_steps=-1), "kl_warmup_steps"), (dict(kl_warmup_steps=2.5), "kl_warmup_steps"),
    (dict(free_bits=-0.1), "free_bits"), (dict(free_bits=float("nan")), "free_bits"),
    (dict(free_bits=0.5, capacity=5.0), "free_bits"), (dict(kl_warmup_steps=10, tc_weight=2.0, dataset_size=10), "kl_warmup"),
    (dict(binarize=1), "binarize"), (dict(binarize=True, likelihood="gaussian"), "binarize"),
])
def test_vae_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VAEConfig(**kwargs)


def test_bernoulli_decoder_rejects_images_outside_unit_interval():
    m = VAE(VAEConfig(image_shape=(1, 4, 4), latent_size=2, hidden=(8,)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m(torch.full((2, 1, 4, 4), 1.5))
    with pytest.raises(ValueError, match="shape"):
        m(torch.rand(2, 16))
    gaussian = VAE(VAEConfig(image_shape=(1, 4, 4), latent_size=2, hidden=(8,), likelihood="gaussian"))
    assert torch.isfinite(gaussian(torch.full((2, 1, 4, 4), 1.5)).loss)


def _PPCA(offset=0.0, scale=1.0):
    g = torch.Generator().manual_seed(0)
    return LinearGaussianModel(torch.randn(6, 2, generator=g), torch.randn(6, generator=g), 0.5,
                               q_offset=offset, q_scale=scale)


def test_linear_gaussian_elbo_identity_and_exact_posterior():
    model = _PPCA(offset=0.4, scale=1.6)
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    q = model.encode(x)
    assert torch.allclose(model.log_px(x), model.elbo(x, q) + kl_divergence(q, model.posterior(x)), atol=1e-10)
    assert torch.allclose(model.elbo(x, model.posterior(x)), model.log_px(x), atol=1e-10)
    # the closed-form ELBO against a Monte Carlo estimate of E_q[log p(x|z)] − KL(q ‖ p(z))
    z = q.sample((20_000,))
    terms = (model.decode(z.reshape(-1, 2)).log_prob(x.repeat(20_000, 1)).view(20_000, 30)
             + model.prior(1).log_prob(z.reshape(-1, 2)).view(20_000, 30) - q.log_prob(z))
    standard_error = terms.std(0) / 20_000 ** 0.5
    assert ((terms.mean(0) - model.elbo(x, q)).abs() < 5 * standard_error).all()


def test_importance_weighted_bound_is_exact_with_the_true_posterior():
    model = _PPCA()
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exact = model.log_px(x)
    for k in (1, 7):
        est = importance_weighted_log_likelihood(model, x, k=k, chunk=3, batch_size=6)
        assert torch.allclose(est, exact, atol=1e-8)     # every importance weight equals p(x)


def test_importance_weighted_bound_rises_with_k_towards_log_px():
    torch.manual_seed(0)
    model = _PPCA(offset=0.5, scale=1.5)
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = model.log_px(x).mean().item()
    bounds = [importance_weighted_log_likelihood(model, x, k=k, chunk=100).mean().item() for k in (1, 10, 100, 1000)]
    assert all(a <= b + 1e-3 for a, b in zip(bounds, bounds[1:])), bounds
    assert bounds[-1] <= exact + 1e-3 and exact - bounds[-1] < 0.25 * (exact - bounds[0]), (bounds, exact)


def test_importance_weighted_bound_validates_k():
    with pytest.raises(ValueError, match="k must"):
        importance_weighted_log_likelihood(_PPCA(), torch.zeros(2, 6, dtype=torch.float64), k=0)


def test_reparameterised_gradient_is_unbiased_and_low_variance():
    # d/dμ E_{z~N(μ,σ²)}[z²] = 2μ; pathwise: 2(μ + σε); score function: z² (z − μ)/σ²
    mu, sigma, n = 1.5, 0.7, 200_000
    eps = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = mu + sigma * eps
    pathwise = 2 * z
    score = z ** 2 * (z - mu) / sigma ** 2
    assert abs(pathwise.mean().item() - 2 * mu) < 0.01 and abs(score.mean().item() - 2 * mu) < 0.1
    assert score.var().item() > 10 * pathwise.var().item()


def test_vae_trains_and_checkpoints(tmp_path):
    from companion.data import load

    x, _ = load("digits", "train")
    companion.seed_everything(0)
    m = VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=4, hidden=(64,)))
    h = fit(m, x, epochs=20, lr=3e-3, progress=False)
    assert h.train["loss"][-1] < 0.8 * h.train["loss"][0]
    m.eval()
    with torch.no_grad():
        elbo = -sum(m(x[:100]).loss.item() for _ in range(20)) / 20     # averaged over samples of z
    iw = importance_weighted_log_likelihood(m, x[:100], k=200).mean().item()
    assert elbo <= iw, (elbo, iw)                                       # L_1 ≤ L_200
    path = save_checkpoint(m, tmp_path / "vae.safetensors")
    loaded = load_checkpoint(path)
    assert isinstance(loaded, VAE) and torch.equal(loaded.encode(x[:3]).mean, m.encode(x[:3]).mean)


def test_per_dimension_kl_sums_to_the_kl_and_matches_torch():
    g = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)
    per_dim = losses.kl_normal_std_normal_per_dim(mu, logvar)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert per_dim.shape == (5, 4) and torch.allclose(per_dim, expected, atol=1e-12)
    assert torch.allclose(per_dim.sum(1), losses.kl_normal_std_normal(mu, logvar), atol=1e-12)


def _vae(**kw):
    companion.seed_everything(0)
    return VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=3, hidden=(16,), **kw))


def test_kl_annealing_ramps_the_kl_weight_linearly_to_beta():
    m, x = _vae(beta=2.0, kl_warmup_steps=4), torch.rand(6, 1, 8, 8)
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    seen = []
    for step in range(7):
        out = m(x)
        seen.append(out.stats["kl_weight"].item())
        assert torch.allclose(out.loss, out.terms["recon"] + seen[-1] * out.terms["kl"])
        opt.zero_grad(), out.loss.backward(), opt.step()
    assert seen == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    m.eval()
    with torch.no_grad():
        m(x)
    assert m.steps.item() == 7, "evaluation does not advance the schedule"


def test_free_bits_is_the_sum_of_clamped_per_dimension_kls():
    x = torch.rand(6, 1, 8, 8)
    lam = 0.05
    m = _vae(free_bits=lam)
    torch.manual_seed(1)
    out = m(x)
    mu, logvar = m.posterior_params(x)
    kl_j = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)   # (k,), independent
    assert torch.allclose(out.loss, out.terms["recon"] + kl_j.clamp(min=lam).sum(), atol=1e-5)
    assert torch.allclose(out.terms["kl"], kl_j.sum(), atol=1e-5), "the reported KL is the true one"
    # a dimension below λ gets no gradient from the KL term: with λ above every KL_j, the
    # encoder's gradient is the reconstruction's alone
    big = _vae(free_bits=1e3)
    torch.manual_seed(1)
    out = big(x)
    g_loss = torch.autograd.grad(out.loss, big.encoder[-2].weight, retain_graph=True)[0]
    g_recon = torch.autograd.grad(out.terms["recon"], big.encoder[-2].weight)[0]
    assert torch.allclose(g_loss, g_recon) and torch.allclose(out.loss, out.terms["recon"] + 3 * 1e3)
    # λ = 0 is the plain VAE, value for value
    plain, zero = _vae(), _vae(free_bits=0.0)
    torch.manual_seed(2)
    a = plain(x).loss
    torch.manual_seed(2)
    assert torch.equal(a, zero(x).loss)


def test_binarize_resamples_training_batches_only():
    m, x = _vae(binarize=True), torch.full((64, 1, 8, 8), 0.3)
    seen = []
    hook = m.encoder.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    torch.manual_seed(0)
    m.train()
    m(x)
    m.eval()
    m(x)
    hook.remove()
    train_in, eval_in = seen
    assert set(train_in.unique().tolist()) == {0.0, 1.0}
    assert abs(train_in.mean().item() - 0.3) < 0.05, "x ∼ Bernoulli(x): the mean is kept"
    assert torch.equal(eval_in, x)
