"""Codebook usage of a vector-quantised model over a whole data set, not a single batch."""
from __future__ import annotations

import torch

from companion.models.base import model_device
from companion.models.vq import perplexity


@torch.no_grad()
def code_counts(model, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """How often each of the K codes is chosen over all positions of all images in ``x`` (K,)."""
    was_training = model.training
    model.eval()
    try:
        k = model.config.num_codes
        counts = torch.zeros(k, dtype=torch.long)
        device = model_device(model)
        for i in range(0, len(x), batch_size):
            counts += torch.bincount(model.encode(x[i:i + batch_size].to(device)).flatten().cpu(), minlength=k)
    finally:
        model.train(was_training)
    return counts


def codebook_usage(model, x: torch.Tensor, *, batch_size: int = 1000) -> dict[str, float]:
    """``perplexity`` (exp of the entropy of the code frequencies; K at best) and
    ``used_fraction`` (share of the K codes chosen at least once) over the data ``x``."""
    counts = code_counts(model, x, batch_size=batch_size)
    return {"perplexity": perplexity(counts).item(), "used_fraction": (counts > 0).float().mean().item()}
