"""Properties of learned weights and codes: filter roughness, dead units."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def filter_roughness(weight: torch.Tensor, image_shape: Sequence[int]) -> float:
    """Median over first-layer filters (rows of ``weight``, (m, H·W)) of
    Σ(differences of neighbouring pixels)² / Σ w².

    Smooth, stroke-like filters score low; filters dominated by pixel noise score high.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D tensor (filters, pixels), got {getattr(weight, 'shape', weight)!r}")
    h, w_ = image_shape[-2:]
    if weight.shape[1] != h * w_ or h < 2 or w_ < 2:
        raise ValueError(f"each filter must have {h}×{w_} = {h * w_} pixels (at least 2×2), got {weight.shape[1]}")
    w = weight.detach().cpu().reshape(len(weight), h, w_)
    dy = (w[:, 1:, :] - w[:, :-1, :]).pow(2).sum((1, 2))
    dx = (w[:, :, 1:] - w[:, :, :-1]).pow(2).sum((1, 2))
    return ((dx + dy) / w.pow(2).sum((1, 2)).clamp_min(1e-12)).median().item()


def dead_units(codes: torch.Tensor) -> int:
    """Units that are zero for every row of ``codes`` (N, m), e.g. never selected by a top-k."""
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2:
        raise ValueError(f"codes must be a 2-D tensor (N, m), got {getattr(codes, 'shape', codes)!r}")
    return int(((codes != 0).sum(dim=0) == 0).sum().item())
