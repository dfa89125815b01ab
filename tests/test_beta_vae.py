"""β-VAE (chapter 7): the β objective, Burgess et al.'s controlled capacity, and their checks."""
import math

import pytest
import torch

import companion
from companion import losses
from companion.models import VAE, VAEConfig
from companion.train import fit, load_checkpoint, save_checkpoint


def _model(**kw):
    companion.seed_everything(0)
    return VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=3, hidden=(16,), **kw))


def test_beta_weights_only_the_kl():
    x = torch.rand(6, 1, 8, 8)
    outs = {}
    for beta in (0.0, 1.0, 4.0):
        m = _model(beta=beta)
        torch.manual_seed(1)
        outs[beta] = m(x)
    for beta, out in outs.items():
        # same weights and noise: the terms agree, only the weight on the KL differs
        assert torch.allclose(out.terms["kl"], outs[1.0].terms["kl"])
        assert torch.allclose(out.loss, out.terms["recon"] + beta * out.terms["kl"])


def test_lagrangian_bounds_the_negative_beta_loss():
    """F(θ, φ, β) = E log p(x|z) − β (KL − δ) ≥ −L_BETA for β, δ ≥ 0, with equality at δ = 0."""
    x = torch.rand(6, 1, 8, 8)
    m = _model(beta=4.0)
    torch.manual_seed(2)
    out = m(x)
    for delta in (0.0, 0.5, 3.0):
        lagrangian = -out.terms["recon"] - 4.0 * (out.terms["kl"] - delta)
        assert lagrangian >= -out.loss - 1e-6
        assert torch.isclose(lagrangian + out.loss, torch.tensor(4.0 * delta), atol=1e-5)


def test_controlled_capacity_value_and_gradient():
    kl = torch.tensor([3.0, 7.0], requires_grad=True)
    out = losses.controlled_capacity(kl, 5.0, gamma=10.0)
    assert torch.allclose(out, torch.tensor([20.0, 20.0]))
    out.sum().backward()
    assert torch.allclose(kl.grad, torch.tensor([-10.0, 10.0]))     # pulls the KL towards C from both sides
    for bad in (dict(capacity=-1.0, gamma=1.0), dict(capacity=1.0, gamma=-1.0), dict(capacity=float("nan"), gamma=1.0)):
        with pytest.raises(ValueError):
            losses.controlled_capacity(torch.tensor(1.0), **bad)
    with pytest.raises(TypeError):
        losses.controlled_capacity(1.0, 1.0, 1.0)


def test_capacity_schedule_rises_linearly_then_holds():
    m = _model(capacity=10.0, gamma=100.0, capacity_steps=4)
    x = torch.rand(4, 1, 8, 8)
    seen = []
    for _ in range(6):
        out = m(x)
        seen.append(out.stats["capacity"].item())
        assert torch.allclose(out.loss, out.terms["recon"] + 100.0 * (out.terms["kl"] - seen[-1]).abs())
        out.loss.backward()
    assert seen == pytest.approx([0.0, 2.5, 5.0, 7.5, 10.0, 10.0])
    m.eval()                                   # evaluation does not advance the schedule
    m(x)
    assert m.steps.item() == 6


def test_capacity_pulls_the_kl_to_its_target():
    """Trained with a fixed target C, the KL settles near C whatever the data prefer."""
    companion.seed_everything(0)
    x = (torch.rand(512, 1, 8, 8) > 0.5).float()
    for target in (2.0, 6.0):
        m = VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=4, hidden=(32,), capacity=target, gamma=50.0,
                          capacity_steps=1))
        h = fit(m, x, epochs=15, lr=3e-3, batch_size=64, progress=False)
        assert abs(h.train["kl"][-1] - target) < 0.3 * target


def test_capacity_state_survives_a_checkpoint(tmp_path):
    m = _model(capacity=10.0, capacity_steps=100)
    fit(m, torch.rand(64, 1, 8, 8), epochs=1, batch_size=16, progress=False)
    assert m.steps.item() == 4
    save_checkpoint(m, tmp_path / "m.safetensors")
    m2 = load_checkpoint(tmp_path / "m.safetensors")
    assert m2.steps.item() == 4 and m2.current_capacity() == pytest.approx(0.4)


@pytest.mark.parametrize("kwargs, field", [
    (dict(beta=-0.5), "beta"), (dict(capacity=-1.0), "capacity"), (dict(gamma=-1.0), "gamma"),
    (dict(capacity_steps=0), "capacity_steps"), (dict(capacity=float("inf")), "capacity"),
    (dict(tc_weight=-1.0, dataset_size=10), "tc_weight"), (dict(tc_weight=2.0), "dataset_size"),
    (dict(tc_weight=2.0, dataset_size=10, capacity=3.0), "not both"),
])
def test_config_rejects(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VAEConfig(**kwargs)


def _gaussian_posteriors(rho, n=4000, s=0.3, seed=0):
    """N diagonal posteriors N(μ_n, s² I) whose means make the aggregate ≈ N(0, [[1, ρ], [ρ, 1]])."""
    g = torch.Generator().manual_seed(seed)
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    mu = torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov - s ** 2 * torch.eye(2)).T
    logvar = torch.full_like(mu, 2 * math.log(s))
    return mu + s * torch.randn(n, 2, generator=g, dtype=torch.float64), mu, logvar


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_total_correlation_matches_the_gaussian_closed_form(rho):
    """A batch that is the whole data set: the stratified estimate is the exact mixture, and
    its TC and I(x; z) match the Gaussian closed forms −½ log(1 − ρ²) and ½ log det Σ − log s²."""
    z, mu, logvar = _gaussian_posteriors(rho)
    parts = losses.kl_decomposition(z, mu, logvar, dataset_size=len(z))
    assert parts["tc"].item() == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.03)
    assert parts["mi"].item() == pytest.approx(0.5 * math.log(1 - rho ** 2) - 2 * math.log(0.3), abs=0.05)
    assert abs(parts["dim_kl"].item()) < 0.02               # each marginal is about N(0, 1)
    # on a random batch of 500 out of the 4,000 the estimate stays close
    idx = torch.randperm(len(z), generator=torch.Generator().manual_seed(1))[:500]
    part = losses.kl_decomposition(z[idx], mu[idx], logvar[idx], dataset_size=len(z))
    assert part["tc"].item() == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.1)


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_the_three_parts_add_up_to_the_one_sample_kl(estimator):
    from torch.distributions import Normal
    z, mu, logvar = _gaussian_posteriors(0.5, n=300)
    parts = losses.kl_decomposition(z, mu, logvar, dataset_size=5000, estimator=estimator)
    one_sample = (Normal(mu, (0.5 * logvar).exp()).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1).mean()
    assert torch.isclose(parts["mi"] + parts["tc"] + parts["dim_kl"], one_sample)


def test_mws_differs_from_mss_by_a_constant_in_the_parameters():
    """The two estimators weight the batch differently; the MWS weights are one constant, so the
    gradient of its TC is that of log Σ_j q(z|x_j) − Σ_d log Σ_j q(z_d|x_j)."""
    z, mu, logvar = _gaussian_posteriors(0.5, n=64)
    mu = mu.clone().requires_grad_(True)
    a = losses.kl_decomposition(z, mu, logvar, dataset_size=1000, estimator="mws")["tc"]
    b = losses.kl_decomposition(z, mu, logvar, dataset_size=100_000, estimator="mws")["tc"]
    assert (a - b).item() == pytest.approx(-math.log(100), rel=1e-9)   # (D − 1) log(N₁ / N₂) with D = 2
    ga, = torch.autograd.grad(a, mu)
    gb, = torch.autograd.grad(b, mu)
    assert torch.allclose(ga, gb)


def test_tcvae_weights_only_the_total_correlation():
    companion.seed_everything(0)
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    kw = dict(image_shape=(1, 8, 8), latent_size=3, hidden=(16,))
    plain = VAE(VAEConfig(**kw, tc_weight=1.0, dataset_size=1000))
    heavy = VAE(VAEConfig(**kw, tc_weight=7.0, dataset_size=1000))
    heavy.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    a = plain(x)
    torch.manual_seed(1)
    b = heavy(x)
    assert set(a.terms) == {"recon", "kl", "mi", "tc", "dim_kl"}
    assert torch.isclose(b.loss - a.loss, 6.0 * a.terms["tc"], atol=1e-4)
    assert torch.isclose(a.loss, a.terms["recon"] + a.terms["mi"] + a.terms["tc"] + a.terms["dim_kl"])
    h = fit(heavy, x, epochs=2, batch_size=8, progress=False)
    assert set(h.train) >= {"mi", "tc", "dim_kl"}
