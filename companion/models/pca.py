"""Principal component analysis as a closed-form linear autoencoder (the baseline of ch. 1).

PCA keeps the top-k eigenvectors W (d × k) of the data covariance: the code of x is
z = Wᵀ(x − μ) and the reconstruction x' = μ + W z. Among all rank-k linear maps it has the
smallest mean squared reconstruction error (Eckart–Young), which is the bar any linear
autoencoder can at best reach.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from companion import losses
from companion.losses import finite_range
from companion.models.base import EncoderDecoder, Output, check_codes, check_input, plain_fields, positive_int


@dataclass
class PCAConfig:
    """Configuration of a :class:`PCA`: ``code_size`` k, and the input shape it was fitted
    on (set by :meth:`PCA.fit`; ``None`` before)."""

    code_size: int = 2
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        plain_fields(self)
        positive_int(self, "code_size")
        if self.image_shape is not None:
            self.image_shape = tuple(self.image_shape)
            if not self.image_shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                                           for s in self.image_shape):
                raise ValueError(f"PCAConfig.image_shape must be a shape of positive ints, got {self.image_shape}")


class PCA(EncoderDecoder):
    """PCA with ``code_size`` components, fitted by :meth:`fit` (an SVD, no training).
    ``PCA(k)`` is ``PCA(PCAConfig(code_size=k))``."""

    config_class = PCAConfig
    positional = ("code_size",)

    def __init__(self, config: PCAConfig | None = None, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self.code_size = self.config.code_size
        d = math.prod(self.config.image_shape) if self.config.image_shape else 0
        k = self.code_size if d else 0
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(d, k))   # (d, k), orthonormal columns
        self.register_buffer("explained_variance", torch.zeros(k))

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        return self.config.image_shape

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PCA":
        """Fit to images (N, C, H, W) or vectors (N, d); returns self. Every check comes before
        the first change, so a refused fit leaves the PCA as it was."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"PCA.fit expects a floating-point torch.Tensor (N, ...), got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() < 2 or x.shape[0] < 2:
            raise ValueError(f"PCA.fit needs at least 2 examples of shape (N, ...), got {tuple(x.shape)}")
        flat = x.reshape(len(x), -1).double()
        n, d = flat.shape
        if self.code_size > min(n, d):
            raise ValueError(f"PCA.code_size={self.code_size} exceeds min(N, d) = {min(n, d)}")
        finite_range(flat, "the data PCA.fit was given")
        mean = flat.mean(0)
        centred = flat - mean
        if n > d:      # the d × d covariance's eigenvectors: one (d × n)(n × d) product and a small eigh
            var, vecs = torch.linalg.eigh(centred.T @ centred / (n - 1))           # ascending
            var, vecs = var.flip(0)[: self.code_size], vecs.flip(1)[:, : self.code_size]
        else:          # fewer examples than dimensions: the thin SVD of the data
            _, s, vh = torch.linalg.svd(centred, full_matrices=False)
            var, vecs = s[: self.code_size] ** 2 / (n - 1), vh[: self.code_size].T
        self.config.image_shape = tuple(x.shape[1:])
        self.mean = mean.float()
        self.components = vecs.float().contiguous()
        self.explained_variance = var.clamp(min=0).float()
        return self

    def _check_fitted(self) -> None:
        if self.config.image_shape is None:
            raise RuntimeError("PCA is not fitted yet: call .fit(x_train) first")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = Wᵀ(x − μ): (N, ...) → (N, k)."""
        self._check_fitted()
        check_input(x, name="PCA.encode", shape=tuple(self.image_shape), dtype=self.mean.dtype)
        return (x.reshape(len(x), -1) - self.mean) @ self.components

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x' = μ + W z: (N, k) → (N, ...) in the fitted input shape."""
        self._check_fitted()
        check_codes(self, z, self.code_size)
        return (self.mean + z @ self.components.T).reshape(len(z), *self.image_shape)

    def forward(self, x: torch.Tensor) -> Output:
        z = self.encode(x)
        x_hat = self.decode(z).reshape(x.shape)
        recon = losses.mse(x_hat, x)
        return Output(loss=recon, terms={"recon": recon}, x_hat=x_hat, z=z)
