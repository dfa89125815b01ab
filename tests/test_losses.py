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
    with pytest.raises(ValueError, match="unknown reconstruction"):
        losses.reconstruction("l1", torch.zeros(2, 3), torch.zeros(2, 3))


def test_bits_per_dim():
    assert math.isclose(losses.bits_per_dim(784 * math.log(2), 784), 1.0)
    with pytest.raises(ValueError):
        losses.bits_per_dim(1.0, 0)
