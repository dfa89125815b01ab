"""How well a sparse autoencoder's units match known features, and how it uses its units
(chapter 11)."""
from __future__ import annotations

import torch

from companion.models.base import model_device
from companion.runtime import plain


def _directions(found) -> torch.Tensor:
    from companion.models.sae import SAE

    if isinstance(found, SAE):
        with torch.no_grad():
            return found.directions().detach().cpu()
    if isinstance(found, torch.Tensor) and found.dim() == 2 and found.is_floating_point():
        return found.detach().cpu()
    raise TypeError(f"expected an SAE or its unit directions as a float tensor (m, d), got "
                    f"{getattr(found, 'shape', type(found).__name__)}")


def feature_recovery(found, directions: torch.Tensor, *, threshold: float = 0.9) -> dict:
    """For each true direction u_a, the cosine of the unit direction that matches it best.

    Args:
        found: an :class:`~companion.models.SAE` (its decoder's directions) or directions (m, d).
        directions: the true unit directions (F, d), one per row.
        threshold: the cosine from which a feature counts as recovered.

    Returns ``recovered`` (the share of features whose best cosine is ≥ ``threshold``),
    ``mean_max_cos`` (their mean best cosine) and ``max_cos`` (F,) (each feature's best cosine).
    """
    w = _directions(found)
    if not isinstance(directions, torch.Tensor) or directions.dim() != 2 or directions.shape[1] != w.shape[1]:
        raise ValueError(f"directions must be a tensor (F, d={w.shape[1]}), got "
                         f"{getattr(directions, 'shape', type(directions).__name__)}")
    threshold = plain(threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1:
        raise ValueError(f"threshold must be a cosine in [-1, 1], got {threshold!r}")
    u = directions.detach().cpu().to(w.dtype)
    cos = (u / u.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True).clamp(min=1e-12)).T    # (F, m)
    best = cos.max(dim=1).values
    return {"recovered": (best >= threshold).float().mean().item(), "mean_max_cos": best.mean().item(),
            "max_cos": best}


@torch.no_grad()
def sae_usage(model, x: torch.Tensor, *, batch_size: int = 4096) -> dict[str, float]:
    """``l0`` (mean number of units on per example), ``unused_fraction`` (share of units that
    never fire on ``x``; the SAE's own ``dead`` counts training steps instead) and ``nmse`` (Σ‖x − x'‖² / Σ‖x − x̄‖², 1 for a model that outputs
    the mean) of an SAE on the data ``x`` (N, d)."""
    from companion.models.sae import SAE

    if not isinstance(model, SAE):
        raise TypeError(f"sae_usage needs an SAE, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    model.check_images(x)
    was_training = model.training
    model.eval()
    device = model_device(model)
    fired = torch.zeros(model.config.code_size, dtype=torch.bool)
    on = err = 0.0
    try:
        for xb in x.split(batch_size):
            z = model.encode(xb.to(device))
            err += (xb.to(device) - model.decode(z)).pow(2).sum().item()
            on += (z > 0).sum().item()
            fired |= (z > 0).any(0).cpu()
    finally:
        model.train(was_training)
    spread = (x - x.mean(0)).pow(2).sum().item()
    return {"l0": on / len(x), "unused_fraction": 1 - fired.float().mean().item(),
            "nmse": err / spread if spread > 0 else float("nan")}
