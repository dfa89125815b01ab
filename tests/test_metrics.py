import math

import numpy as np
import pytest
import torch

from companion.metrics import encode_all, linear_probe_accuracy, principal_angles, reconstruction_error
from companion.models import PCA, Autoencoder


def test_principal_angles_known_cases():
    e = torch.eye(3)
    assert torch.allclose(principal_angles(e[:, :2], e[:, :2]), torch.zeros(2, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(principal_angles(e[:, :1], e[:, 1:2]), torch.tensor([90.0], dtype=torch.float64))
    # a plane and the same plane tilted by 30° about the x axis
    t = math.radians(30)
    tilted = torch.tensor([[1.0, 0], [0, math.cos(t)], [0, math.sin(t)]])
    angles = principal_angles(e[:, :2], tilted)
    assert torch.allclose(angles, torch.tensor([0.0, 30.0], dtype=torch.float64), atol=1e-5)
    # invariant to a change of basis within each subspace
    a = torch.randn(10, 3)
    assert principal_angles(a, a @ torch.randn(3, 3)).max() < 1e-3


def test_principal_angles_match_scipy():
    from scipy.linalg import subspace_angles

    a, b = torch.randn(12, 4, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    ours = principal_angles(a, b, degrees=False).numpy()
    assert np.allclose(np.sort(ours), np.sort(subspace_angles(a.numpy(), b.numpy())), atol=1e-8)


def test_principal_angles_errors():
    with pytest.raises(ValueError):
        principal_angles(torch.randn(4, 2), torch.randn(5, 2))
    with pytest.raises(ValueError):
        principal_angles(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(TypeError):
        principal_angles(np.eye(3), torch.eye(3))


def test_reconstruction_error_is_per_example_sum():
    x = torch.rand(30, 1, 4, 4)
    pca = PCA(3).fit(x)
    x_hat = pca.decode(pca.encode(x))
    expected = ((x_hat - x) ** 2).sum(dim=(1, 2, 3)).mean().item()
    assert math.isclose(reconstruction_error(pca, x, batch_size=7), expected, rel_tol=1e-5)


def test_encode_all_batches_and_restores_mode():
    model = Autoencoder(code_size=3, image_shape=(1, 4, 4), hidden=(8,))
    model.train()
    x = torch.rand(25, 1, 4, 4)
    z = encode_all(model, x, batch_size=4)
    assert z.shape == (25, 3) and model.training
    assert torch.allclose(z, model.encode(x), atol=1e-6)


def test_linear_probe_separable_and_random():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    z = torch.randn(200, 2, generator=g) + 6 * y[:, None].float()
    assert linear_probe_accuracy(z[:100], y[:100], z[100:], y[100:]) == 1.0
    noise = torch.randn(200, 2, generator=g)
    assert linear_probe_accuracy(noise[:100], y[:100], noise[100:], y[100:]) < 0.75
    with pytest.raises(ValueError):
        linear_probe_accuracy(z[:10], y[:9], z, y)


def test_linear_probe_predicts_and_checks_width():
    from companion.metrics import linear_probe

    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    z = torch.randn(200, 5, generator=g) + 3 * y[:, None].float()
    predict = linear_probe(z, y)
    assert (predict(z) == y.numpy()).mean() > 0.95
    with pytest.raises(ValueError, match="5 dims"):
        predict(torch.randn(4, 6))


class _Projector(torch.nn.Module):
    """r(x) = P x with P the projection onto the first k of d coordinates (k = d: the identity)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def encode(self, x):
        return x.flatten(1)[:, : self.k]

    def decode(self, z):
        return torch.nn.functional.pad(z, (0, 784 - self.k)).view(-1, 1, 28, 28)


def test_perturbation_gain_is_one_for_a_copy_and_the_projected_share_otherwise():
    from companion.metrics import perturbation_gain
    x = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert abs(perturbation_gain(_Projector(784), x) - 1.0) < 1e-5
    # a random direction keeps about sqrt(k/d) of its length under a k-dimensional projection
    assert abs(perturbation_gain(_Projector(196), x) - (196 / 784) ** 0.5) < 0.02
    assert perturbation_gain(_Projector(196), x, seed=1) != perturbation_gain(_Projector(196), x, seed=2)
