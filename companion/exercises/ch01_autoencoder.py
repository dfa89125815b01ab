"""Exercises of chapter 1 (the autoencoder)."""
from __future__ import annotations

import torch

from companion import losses
from companion.exercises.core import Exercise, register, seeded
from companion.metrics.subspace import principal_angles



# --- ae.mse: the reduction convention --------------------------------------------------

def _mse_cases():
    g = seeded(1)
    return [(torch.rand(b, *shape, generator=g), torch.rand(b, *shape, generator=g))
            for b, shape in ((4, (1, 5, 5)), (7, (3,)), (1, (2, 4, 4)))]


register(Exercise(
    id="ae.mse",
    title="squared error summed over dimensions, averaged over the batch",
    cases=_mse_cases,
    reference=lambda x_hat, x: losses.mse(x_hat, x),
    hint="sum (x_hat - x)**2 over every dimension except the first, then take the mean "
         "over the batch; the result is a 0-dim tensor.",
))


# --- ae.pca_reconstruct: PCA as the best linear autoencoder ----------------------------

def pca_reconstruct_reference(x_train: torch.Tensor, x: torch.Tensor, m: int) -> torch.Tensor:
    """Project the rows of x (any number, d columns) onto the top-m principal subspace of
    x_train (n, d) and map back."""
    mean = x_train.mean(0)
    _, _, vh = torch.linalg.svd(x_train - mean, full_matrices=False)
    w = vh[:m].T                     # (d, m), orthonormal columns
    return mean + (x - mean) @ w @ w.T


def _pca_cases():
    g = seeded(2)
    out = []
    for n, d, k in ((60, 8, 2), (40, 12, 5), (100, 6, 1)):
        scales = torch.linspace(3.0, 0.2, d)                     # distinct variances
        basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        offset = 2.0 + torch.randn(d, generator=g, dtype=torch.float64)   # non-zero mean
        x_train = (torch.randn(n, d, generator=g, dtype=torch.float64) * scales) @ basis.T + offset
        x = (torch.randn(9, d, generator=g, dtype=torch.float64) * scales) @ basis.T + offset
        out.append((x_train, x, k))
    return out


register(Exercise(
    id="ae.pca_reconstruct",
    title="reconstruct with the top-m principal components",
    cases=_pca_cases,
    reference=pca_reconstruct_reference,
    hint="centre with the training mean, take the top-m right singular vectors of the centred "
         "training data (rows of Vᵀ), project, map back, and add the mean again.",
    atol=1e-6,
))


# --- ae.largest_angle: how far apart are two subspaces? --------------------------------

def largest_angle_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest principal angle, in degrees, between span(a) and span(b)."""
    return float(principal_angles(a, b).max())


def _angle_cases():
    g = seeded(3)
    out = []
    for d, k, tilt in ((10, 2, 0.0), (10, 3, 0.3), (6, 2, 2.0), (20, 4, 0.05)):
        a = torch.randn(d, k, generator=g, dtype=torch.float64)
        mix = torch.randn(k, k, generator=g, dtype=torch.float64) + 3 * torch.eye(k, dtype=torch.float64)
        b = a @ mix + tilt * torch.randn(d, k, generator=g, dtype=torch.float64)   # not orthonormal
        out.append((a, b))
    return out


register(Exercise(
    id="ae.largest_angle",
    title="largest principal angle between two subspaces, in degrees",
    cases=_angle_cases,
    reference=largest_angle_reference,
    hint="the columns are not orthonormal: orthonormalise each matrix (torch.linalg.qr), take "
         "the singular values of Q_aᵀ Q_b (cosines of the angles), and convert the largest "
         "angle (smallest cosine) to degrees.",
    atol=1e-3,
    rtol=1e-4,
))
