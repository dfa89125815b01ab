"""Principal angles between subspaces (Björck & Golub, 1973).

For matrices A (d × p) and B (d × q) whose columns span two subspaces, take orthonormal
bases Q_A, Q_B (by QR); the singular values of Q_Aᵀ Q_B are the cosines of the principal
angles. The largest angle is 0 exactly when one subspace contains the other.
"""
from __future__ import annotations

import torch


def principal_angles(a: torch.Tensor, b: torch.Tensor, *, degrees: bool = True) -> torch.Tensor:
    """Principal angles between span(a) and span(b), ascending.

    Args:
        a: (d, p) matrix, columns spanning the first subspace (full column rank).
        b: (d, q) matrix, columns spanning the second.
        degrees: return degrees (default) or radians.

    Returns:
        (min(p, q),) tensor of angles, smallest first.
    """
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError("principal_angles expects torch tensors")
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected (d, p) and (d, q) matrices, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] > a.shape[0] or b.shape[1] > b.shape[0]:
        raise ValueError("each matrix needs at most as many columns as rows")
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double())
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    angles = torch.arccos(cos)            # singular values descend, so angles ascend
    return torch.rad2deg(angles) if degrees else angles
