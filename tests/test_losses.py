import math

import pytest
import torch

from companion import losses


def test_mse_reduction_convention():
    x = torch.rand(6, 1, 4, 4)
    x_hat = torch.rand(6, 1, 4, 4)
    expected = sum(((x_hat[i] - x[i]) ** 2).sum() for i in range(6)) / 6
    assert torch.allclose(losses.mse(x_hat, x), expected)
    # independent of batching
    assert torch.allclose(losses.mse(x_hat[:2], x[:2]) * 2 + losses.mse(x_hat[2:], x[2:]) * 4,
                          losses.mse(x_hat, x) * 6)


def test_bce_matches_bernoulli_log_prob_and_formula():
    x = torch.randint(0, 2, (5, 10)).float()
    logits = torch.randn(5, 10)
    nll = -torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(1).mean()
    assert torch.allclose(losses.bce_with_logits(logits, x), nll, atol=1e-5)
    p = torch.sigmoid(logits)
    explicit = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean()
    assert torch.allclose(losses.bce_with_logits(logits, x), explicit, atol=1e-4)


def test_bce_is_stable_for_large_logits():
    x = torch.tensor([[1.0, 0.0]])
    value = losses.bce_with_logits(torch.tensor([[200.0, -200.0]]), x)
    assert torch.isfinite(value) and value < 1e-6


def test_errors():
    with pytest.raises(ValueError, match="does not match"):
        losses.mse(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.bce_with_logits(torch.zeros(2, 3), torch.full((2, 3), 2.0))
    with pytest.raises(TypeError):
        losses.mse(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch"):
        losses.mse(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="unknown likelihood"):
        losses.reconstruction(torch.zeros(2, 3), torch.zeros(2, 3), "l1")
    with pytest.raises(ValueError, match="std"):
        losses.reconstruction(torch.zeros(2, 3), torch.zeros(2, 3), "gaussian", std=0.0)
    with pytest.raises(ValueError, match="event_dims"):
        losses.reconstruction(torch.zeros(2, 3), torch.zeros(2, 3), "gaussian", event_dims=2)


def test_reconstruction_is_the_decoder_log_likelihood():
    """One implementation of −log p_θ(x|z), checked against torch.distributions: Bernoulli from
    logits exactly, Gaussian with σ exactly, and without σ the squared error, which is the
    Gaussian with σ² = ½ less (d/2)·log π. event_dims keeps leading axes (TD-VAE's (B, T, d))."""
    from torch.distributions import Bernoulli, Independent, Normal

    g = torch.Generator().manual_seed(0)
    out, x = torch.randn(5, 1, 4, 4, generator=g), torch.rand(5, 1, 4, 4, generator=g)
    d = x[0].numel()
    bern = -Independent(Bernoulli(logits=out, validate_args=False), 3).log_prob(x)
    assert torch.allclose(losses.reconstruction(out, x, "bernoulli"), bern, atol=1e-5)
    gauss = -Independent(Normal(out, 0.3), 3).log_prob(x)
    assert torch.allclose(losses.reconstruction(out, x, "gaussian", std=0.3), gauss, atol=1e-4)
    half = -Independent(Normal(out, math.sqrt(0.5)), 3).log_prob(x) - d / 2 * math.log(math.pi)
    assert torch.allclose(losses.reconstruction(out, x, "gaussian"), half, atol=1e-4)
    assert torch.allclose(losses.reconstruction(out, x, "gaussian"), ((out - x) ** 2).sum((1, 2, 3)))
    seq_out, seq_x = torch.randn(3, 7, 6, generator=g), torch.rand(3, 7, 6, generator=g)
    per_step = losses.reconstruction(seq_out, seq_x, "bernoulli", event_dims=1)
    assert per_step.shape == (3, 7)
    assert torch.allclose(per_step, -Independent(Bernoulli(logits=seq_out, validate_args=False), 1).log_prob(seq_x), atol=1e-5)
    assert torch.equal(losses.mse(out, x), losses.reconstruction(out, x, "gaussian").mean())
    assert torch.equal(losses.decoder_mean(out, "bernoulli"), torch.sigmoid(out))
    assert losses.decoder_mean(out, "gaussian") is out


def test_bits_per_dim():
    assert math.isclose(losses.bits_per_dim(784 * math.log(2), 784), 1.0)
    with pytest.raises(ValueError):
        losses.bits_per_dim(1.0, 0)
