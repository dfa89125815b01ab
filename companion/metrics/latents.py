"""How much of its code a VAE uses: KL per latent dimension and active units.

One definition of an **active unit** serves the whole book: a latent dimension j is active
when its average KL(q_φ(z_j|x) ‖ N(0, 1)) over held-out inputs exceeds ``threshold`` nats
(0.1 by default). Burda et al. (2016) use a different criterion, the variance across inputs of
the posterior mean, Var_x E_q[z_j] > 0.01; :func:`active_units` computes it with
``by="variance"``. The two agree on a collapsed dimension (σ_j ≈ 1, μ_j ≈ 0) but not on one
whose mean moves a little while its posterior stays as wide as the prior: the variance
criterion counts it, the KL criterion does not, since it carries almost no information.
"""
from __future__ import annotations

import torch

from companion import losses
from companion.runtime import plain

#: nats: a latent dimension whose average KL exceeds this is active (the book's definition)
ACTIVE_KL = 0.1


@torch.no_grad()
def kl_per_dimension(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Average over ``x`` of KL(q_φ(z_j|x) ‖ N(0, 1)) for each latent dimension j: (k,) in nats.
    ``model`` needs ``posterior_params(x) -> (μ, log σ²)`` (a :class:`~companion.models.VAE`)."""
    mu, logvar = _posteriors(model, x, batch_size)
    return losses.kl_normal_std_normal_per_dim(mu, logvar).mean(0)


def active_units(model, x: torch.Tensor, threshold: float | None = None, *, by: str = "kl") -> int:
    """Latent dimensions in use on inputs ``x``: with ``by="kl"`` (the book's definition) those
    whose average KL exceeds ``threshold`` nats (default 0.1); with ``by="variance"`` (Burda
    et al. 2016) those whose posterior mean varies across ``x`` with variance above
    ``threshold`` (default 0.01)."""
    threshold = plain(threshold)
    if by not in ("kl", "variance"):
        raise ValueError(f"by must be 'kl' or 'variance', got {by!r}")
    if threshold is None:
        threshold = ACTIVE_KL if by == "kl" else 0.01
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise ValueError(f"threshold must be a number ≥ 0, got {threshold!r}")
    if by == "kl":
        return int((kl_per_dimension(model, x) > threshold).sum())
    with torch.no_grad():
        mu, _ = _posteriors(model, x, 1000)
    return int((mu.var(dim=0) > threshold).sum())


def _posteriors(model, x, batch_size):
    if not callable(getattr(model, "posterior_params", None)):
        raise TypeError(f"expected a VAE (a model with posterior_params), got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or len(x) < 2:
        raise ValueError(f"expected a float batch of at least 2 inputs, got {getattr(x, 'shape', type(x).__name__)}")
    from companion.models.base import model_device

    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        parts = [tuple(t.cpu() for t in model.posterior_params(x[i:i + batch_size].to(device)))
                 for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
