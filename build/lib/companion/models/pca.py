"""Principal component analysis as a closed-form linear autoencoder (the baseline of ch. 1).

PCA keeps the top-k eigenvectors W (d × k) of the data covariance: the code of x is
z = Wᵀ(x − μ) and the reconstruction x' = μ + W z. Among all rank-k linear maps it has the
smallest mean squared reconstruction error (Eckart–Young), which is the bar any linear
autoencoder can at best reach.
"""
from __future__ import annotations

import torch
from torch import nn

from companion import losses
from companion.models.base import Output


class PCA(nn.Module):
    """PCA with ``code_size`` components, fitted by :meth:`fit` (an SVD, no training)."""

    def __init__(self, code_size: int) -> None:
        super().__init__()
        if isinstance(code_size, bool) or not isinstance(code_size, int) or code_size < 1:
            raise ValueError(f"PCA.code_size must be a positive int, got {code_size!r}")
        self.code_size = code_size
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("components", torch.empty(0))   # (d, k), orthonormal columns
        self.register_buffer("explained_variance", torch.empty(0))
        self.image_shape: tuple[int, ...] | None = None

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PCA":
        """Fit to images (N, C, H, W) or vectors (N, d); returns self."""
        if x.dim() < 2 or x.shape[0] < 2:
            raise ValueError(f"PCA.fit needs at least 2 examples of shape (N, ...), got {tuple(x.shape)}")
        flat = x.reshape(len(x), -1).double()
        n, d = flat.shape
        if self.code_size > min(n, d):
            raise ValueError(f"PCA.code_size={self.code_size} exceeds min(N, d) = {min(n, d)}")
        self.image_shape = tuple(x.shape[1:])
        mean = flat.mean(0)
        _, s, vh = torch.linalg.svd(flat - mean, full_matrices=False)
        self.mean = mean.float()
        self.components = vh[: self.code_size].T.float().contiguous()
        self.explained_variance = (s[: self.code_size] ** 2 / (n - 1)).float()
        return self

    def _check_fitted(self) -> None:
        if self.components.numel() == 0:
            raise RuntimeError("PCA is not fitted yet: call .fit(x_train) first")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = Wᵀ(x − μ): (N, ...) → (N, k)."""
        self._check_fitted()
        flat = x.reshape(len(x), -1)
        if flat.shape[1] != self.mean.numel():
            raise ValueError(f"PCA was fitted on {self.mean.numel()}-dim inputs, got shape {tuple(x.shape)}")
        return (flat - self.mean) @ self.components

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x' = μ + W z: (N, k) → (N, ...) in the fitted input shape."""
        self._check_fitted()
        if z.dim() != 2 or z.shape[1] != self.code_size:
            raise ValueError(f"expected codes of shape (N, {self.code_size}), got {tuple(z.shape)}")
        return (self.mean + z @ self.components.T).reshape(len(z), *self.image_shape)

    def forward(self, x: torch.Tensor) -> Output:
        z = self.encode(x)
        x_hat = self.decode(z).reshape(x.shape)
        recon = losses.mse(x_hat, x)
        return Output(loss=recon, terms={"recon": recon}, x_hat=x_hat, z=z)
