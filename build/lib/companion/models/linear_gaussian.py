r"""A linear-Gaussian latent variable model (probabilistic PCA) where everything is exact.

    z ∼ N(0, I_k),   x | z ∼ N(W z + b, σ² I_d).

Then p(x) = N(b, W Wᵀ + σ² I), the posterior is p(z|x) = N(M⁻¹Wᵀ(x − b), σ² M⁻¹) with
M = WᵀW + σ² I, and for any Gaussian q(z) = N(m, S) the ELBO has a closed form. Chapter 6
uses it to check the VAE's identities exactly; it has the same ``encode`` / ``decode`` /
``prior`` interface as :class:`companion.models.VAE`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal


class LinearGaussianModel(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, σ² I); q(z|x) defaults to the exact posterior.

    Args:
        w: (d, k) loading matrix W; b: (d,) offset; sigma: noise standard deviation > 0.
        q_offset, q_scale: ``encode`` returns the exact posterior with its mean shifted by
            ``q_offset`` and its standard deviations multiplied by ``q_scale`` (0 and 1: exact).
    """

    def __init__(self, w: torch.Tensor, b: torch.Tensor, sigma: float, *, q_offset: float = 0.0,
                 q_scale: float = 1.0) -> None:
        super().__init__()
        if w.dim() != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"expected W (d, k) and b (d,), got {tuple(w.shape)} and {tuple(b.shape)}")
        if not sigma > 0 or not q_scale > 0:
            raise ValueError("sigma and q_scale must be > 0")
        self.register_buffer("w", w.double())
        self.register_buffer("b", b.double())
        self.sigma, self.q_offset, self.q_scale = float(sigma), float(q_offset), float(q_scale)

    @property
    def d(self) -> int:
        return self.w.shape[0]

    @property
    def k(self) -> int:
        return self.w.shape[1]

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x), (N,)."""
        cov = self.w @ self.w.T + self.sigma ** 2 * torch.eye(self.d, dtype=self.w.dtype)
        return MultivariateNormal(self.b, cov).log_prob(x.double())

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """The exact p(z|x), batch (N,), event (k,)."""
        m = self.w.T @ self.w + self.sigma ** 2 * torch.eye(self.k, dtype=self.w.dtype)
        mean = torch.linalg.solve(m, self.w.T @ (x.double() - self.b).T).T
        cov = self.sigma ** 2 * torch.linalg.inv(m)
        return MultivariateNormal(mean, cov.expand(len(x), self.k, self.k))

    def encode(self, x: torch.Tensor) -> MultivariateNormal:
        """q(z|x): the exact posterior, shifted and widened by ``q_offset`` and ``q_scale``."""
        post = self.posterior(x)
        return MultivariateNormal(post.mean + self.q_offset, post.covariance_matrix * self.q_scale ** 2)

    def decode(self, z: torch.Tensor) -> Independent:
        """p(x|z) = N(W z + b, σ² I)."""
        return Independent(Normal(z.double() @ self.w.T + self.b, self.sigma), 1)

    def prior(self, n: int = 1) -> Independent:
        zeros = torch.zeros(n, self.k, dtype=self.w.dtype)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def elbo(self, x: torch.Tensor, q: MultivariateNormal) -> torch.Tensor:
        """E_q[log p(x|z)] − KL(q ‖ p(z)) in closed form for a Gaussian q = N(m, S), (N,)."""
        x, m, s = x.double(), q.mean, q.covariance_matrix
        resid = x - m @ self.w.T - self.b                                   # (N, d)
        trace = torch.einsum("ij,njk,ik->n", self.w, s, self.w)             # tr(W S Wᵀ)
        expected_loglik = (-0.5 * self.d * math.log(2 * math.pi * self.sigma ** 2)
                           - 0.5 * ((resid ** 2).sum(1) + trace) / self.sigma ** 2)
        kl = 0.5 * (torch.diagonal(s, dim1=1, dim2=2).sum(1) + (m ** 2).sum(1) - self.k - torch.logdet(s))
        return expected_loglik - kl
