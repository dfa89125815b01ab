r"""Finite scalar quantisation (Mentzer et al., 2024): a VQ-VAE without a learned codebook.

Each of the D dimensions of the encoder's output is squeezed into a bounded interval and
rounded to one of ℓ_j levels (``levels``):

    ẑ_j = round(h_j(z_j)) / ⌊ℓ_j / 2⌋,     h_j(z) = (ℓ_j − 1)/2 · tanh(z + s_j) − o_j,

with o_j = 1/2 for an even ℓ_j and 0 for an odd one. h_j spans an open interval of length
ℓ_j − 1 that rounds to exactly ℓ_j integers. The shift s_j = atanh((1 − ε) o_j / ((ℓ_j − 1)/2))
puts z_j = 0 within ε/2 of level 0 in the even case too (ε = 10⁻³ keeps it finite for ℓ_j = 2;
it is 0 for an odd ℓ_j). With ℓ_j = 2 the shift is atanh(0.999) ≈ 3.8, deep in the flat tail
of tanh, so such a dimension learns slowly: use ℓ_j ≥ 3 (Mentzer et al. recommend ≥ 5).
Rounding has no gradient, so the straight-through estimator of chapter 8 passes the gradient
at ẑ to z unchanged. The codes are the points of a fixed grid, K = Π_j ℓ_j of them; nothing is
learned there, so nothing can collapse, and neither a codebook loss nor a commitment loss nor
moving averages are needed.

:class:`FiniteScalarQuantizer` is a drop-in for :class:`companion.models.vq.VectorQuantizer`
in :class:`companion.models.VQVAE` (``VQVAEConfig(codebook="fsq", levels=(8, 4, 4))``): it
returns the same :class:`Quantized`, with zero VQ and commitment terms, and its ``codebook``
is the grid, so that decoding an index looks it up the same way.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from companion.models.vq import Quantized, perplexity
from companion.runtime import plain

EPS = 1e-3          # ε of the shift s_j: finite for ℓ_j = 2


def check_levels(levels) -> tuple[int, ...]:
    """``levels`` as a tuple of ints ≥ 2 (one per dimension), or a ``ValueError``."""
    if isinstance(levels, torch.Tensor) or not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError(f"levels must be a non-empty tuple of ints ≥ 2, one per dimension, got {levels!r}")
    levels = tuple(plain(v) for v in levels)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 2 for v in levels):
        raise ValueError(f"levels must be ints ≥ 2 (a dimension needs two values at least), got {levels}")
    return levels


class FiniteScalarQuantizer(nn.Module):
    """Round each of D = ``len(levels)`` dimensions to its own number of levels ℓ_j.

    Args:
        levels: ℓ_1 … ℓ_D, each ≥ 2; the grid has K = Π ℓ_j codes.
    """

    learned_by_loss = False             # no VQ term: there is no codebook to learn

    def __init__(self, levels: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = check_levels(levels)
        self.num_codes, self.code_dim = math.prod(self.levels), len(self.levels)
        ell = torch.tensor(self.levels, dtype=torch.float32)
        offset = (1 - torch.remainder(ell, 2)) / 2                          # o_j: 1/2 for even ℓ_j, 0 for odd
        self.register_buffer("_ell", ell, persistent=False)
        self.register_buffer("_offset", offset, persistent=False)
        self.register_buffer("_shift", torch.atanh((1 - EPS) * offset / ((ell - 1) / 2)), persistent=False)   # s_j
        self.register_buffer("_half", torch.floor(ell / 2), persistent=False)                     # ⌊ℓ_j / 2⌋
        radix = torch.cumprod(torch.tensor((1,) + self.levels[:-1]), 0)
        self.register_buffer("_radix", radix, persistent=False)
        self.register_buffer("codebook", self.codes(torch.arange(self.num_codes)), persistent=False)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, K={self.num_codes}"

    def _per_dim(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.view(1, -1, *([1] * (ndim - 2)))                             # broadcast over (B, D, H, W)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """h_j(z_j): each dimension squeezed into its interval (before rounding)."""
        per = lambda t: self._per_dim(t, z.dim())
        return (per(self._ell) - 1) / 2 * torch.tanh(z + per(self._shift)) - per(self._offset)

    def forward(self, z_e: torch.Tensor, *, update: bool = True) -> Quantized:
        """Quantise ``z_e`` (B, D, H, W); ``update`` is accepted for the VectorQuantizer's
        interface and changes nothing (there is no state)."""
        if not isinstance(z_e, torch.Tensor) or z_e.dim() != 4 or z_e.shape[1] != self.code_dim:
            raise ValueError(f"FiniteScalarQuantizer expects z_e of shape (B, D={self.code_dim}, H, W), "
                             f"got {getattr(z_e, 'shape', type(z_e).__name__)}")
        if not torch.isfinite(z_e).all():
            raise ValueError("FiniteScalarQuantizer got NaN or infinite encoder outputs: they round to no level")
        h = self.bound(z_e)
        rounded = h + (torch.round(h) - h).detach()                           # straight-through
        z_q = rounded / self._per_dim(self._half, 4)
        digits = (torch.round(h).detach() + self._per_dim(self._half, 4)).long()          # 0 … ℓ_j − 1
        indices = (digits * self._per_dim(self._radix, 4)).sum(1)                         # (B, H, W)
        counts = torch.bincount(indices.flatten(), minlength=self.num_codes).to(z_e.dtype)
        zero = z_e.new_zeros(())
        return Quantized(z_q, indices, zero, zero, perplexity(counts))

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """The grid point of each index, (..., D): the inverse of the index ``forward`` gives."""
        if not isinstance(indices, torch.Tensor) or indices.dtype != torch.long:
            raise ValueError(f"codes expects int64 indices, got {getattr(indices, 'dtype', type(indices).__name__)}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f"codes expects indices in 0…{self.num_codes - 1}")
        digits = (indices[..., None] // self._radix) % self._ell.long()
        return (digits - self._half.long()).float() / self._half

    def nearest(self, points: torch.Tensor) -> torch.Tensor:
        """The grid point nearest to each point (..., D): each value rounded to the closest
        level of its dimension (values beyond the outer levels go to them)."""
        if not isinstance(points, torch.Tensor) or points.dim() < 1 or points.shape[-1] != self.code_dim:
            raise ValueError(f"nearest expects points (..., D={self.code_dim}), got "
                             f"{getattr(points, 'shape', type(points).__name__)}")
        if not torch.isfinite(points).all():
            raise ValueError("nearest got NaN or infinite values: they have no nearest level")
        steps = torch.round(points * self._half).clamp(-self._half, self._ell - 1 - self._half)
        return steps / self._half

    def index_of(self, codes: torch.Tensor) -> torch.Tensor:
        """The index of each grid point ``codes`` (..., D), (...): the inverse of :meth:`codes`.
        A value between levels is refused, not rounded."""
        if not isinstance(codes, torch.Tensor) or codes.dim() < 1 or codes.shape[-1] != self.code_dim:
            raise ValueError(f"index_of expects grid points (..., D={self.code_dim}), got "
                             f"{getattr(codes, 'shape', type(codes).__name__)}")
        steps = codes * self._half
        digits = torch.round(steps) + self._half
        if not torch.allclose(steps, torch.round(steps), atol=1e-4) or (digits < 0).any() or (digits >= self._ell).any():
            raise ValueError("index_of takes points of the grid: each value a level of its dimension")
        return (digits.long() * self._radix).sum(-1)
