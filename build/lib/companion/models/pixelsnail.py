r"""A PixelSNAIL-style prior (Chen et al., 2018), small enough for a CPU: the prior of VQ-VAE-2.

Chapter 8's :class:`PixelCNN` sees a position's past only through a few stacked k×k masked
convolutions. Two additions widen its view:

* **gated residual blocks**, h ← h + W (tanh(a) ⊙ σ(b)) with [a, b] a masked convolution of h
  (plus, for a conditional prior, a 1×1 convolution of the conditioning codes);
* **causal multi-head self-attention** over the raster order: position t attends to every
  position s ≤ t, so one layer reaches the whole past. This keeps causality because the
  features at s come after the first mask-"A" convolution and so depend only on codes before s.

Sampling and the loss are :class:`PixelCNN`'s. A conditional prior (the bottom level of
VQ-VAE-2 given the top level) takes grids (B, 2, h, w) from :func:`stack_condition`.
"""
from __future__ import annotations

import torch
from torch import nn

from companion.models.pixelcnn import MaskedConv2d, PixelCNN


class GatedBlock(nn.Module):
    """h + W (tanh(a) ⊙ σ(b)), [a, b] = masked conv "B" of h (+ conditioning)."""

    def __init__(self, channels: int, kernel_size: int, cond_channels: int = 0) -> None:
        super().__init__()
        self.conv = MaskedConv2d(channels, 2 * channels, kernel_size, "B")
        self.cond = nn.Conv2d(cond_channels, 2 * channels, kernel_size=1) if cond_channels else None
        self.out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        g = self.conv(h)
        if self.cond is not None:
            g = g + self.cond(c)
        a, b = g.chunk(2, dim=1)
        return h + self.out(torch.tanh(a) * torch.sigmoid(b))


def causal_mask(n: int, device=None) -> torch.Tensor:
    """(n, n) boolean mask for ``nn.MultiheadAttention``: True where position t may *not*
    attend to s, i.e. s > t."""
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(diagonal=1)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention over raster positions with a learned position embedding;
    position t attends to positions s ≤ t. Residual: h + attention(LayerNorm(h))."""

    def __init__(self, channels: int, heads: int, positions: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.norm = nn.LayerNorm(channels)
        self.position = nn.Parameter(torch.zeros(positions, channels))
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = h.shape
        s = h.flatten(2).transpose(1, 2)                                  # (B, T, C), raster order
        q = self.norm(s + self.position[: hh * ww])
        y, _ = self.attn(q, q, q, attn_mask=causal_mask(hh * ww, h.device), need_weights=False)
        return h + y.transpose(1, 2).reshape(b, c, hh, ww)


class PixelSNAIL(PixelCNN):
    """An autoregressive prior over (h, w) code grids with gated blocks and causal attention.

    Args:
        num_codes: K of the modelled level.
        grid_shape: (h, w) of its grids (for the position embedding).
        channels, blocks, heads: width, number of gated blocks, attention heads.
        cond_codes: K of a conditioning level (0: unconditional).
    """

    def __init__(self, num_codes: int, grid_shape: tuple[int, int], channels: int = 64, blocks: int = 4,
                 heads: int = 4, kernel_size: int = 3, cond_codes: int = 0) -> None:
        nn.Module.__init__(self)
        for name, v in (("num_codes", num_codes), ("channels", channels), ("blocks", blocks), ("heads", heads)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"PixelSNAIL.{name} must be an int ≥ 1, got {v!r}")
        if isinstance(cond_codes, bool) or not isinstance(cond_codes, int) or cond_codes < 0:
            raise ValueError(f"PixelSNAIL.cond_codes must be an int ≥ 0, got {cond_codes!r}")
        self.num_codes, self.cond_codes, self.grid_shape = num_codes, cond_codes, tuple(grid_shape)
        self.embed = nn.Embedding(num_codes, channels)
        self.cond_embed = nn.Embedding(cond_codes, channels) if cond_codes else None
        self.first = MaskedConv2d(channels, channels, 2 * kernel_size + 1, "A")
        half = blocks // 2
        self.blocks_before = nn.ModuleList(GatedBlock(channels, kernel_size, channels if cond_codes else 0)
                                           for _ in range(blocks - half))
        self.attention = CausalSelfAttention(channels, heads, grid_shape[0] * grid_shape[1])
        self.blocks_after = nn.ModuleList(GatedBlock(channels, kernel_size, channels if cond_codes else 0)
                                          for _ in range(half))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, num_codes, kernel_size=1))

    def logits(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        k = self._indices(codes)
        if tuple(k.shape[1:]) != self.grid_shape:
            raise ValueError(f"expected grids of shape {self.grid_shape}, got {tuple(k.shape[1:])}")
        c = None
        if self.cond_codes:
            if cond is None:
                raise ValueError("this prior is conditional: pass the conditioning codes")
            c = self.cond_embed(self._indices(cond, self.cond_codes, "conditioning codes")).permute(0, 3, 1, 2)
            if c.shape[2:] != k.shape[1:]:
                raise ValueError("conditioning codes must be repeated to the grid's size (see stack_condition)")
        elif cond is not None:
            raise ValueError("this prior is unconditional: it takes no condition")
        h = self.first(self.embed(k).permute(0, 3, 1, 2))                 # depends on codes before t
        for block in self.blocks_before:
            h = block(h, c)
        h = self.attention(h)
        for block in self.blocks_after:
            h = block(h, c)
        return self.head(h)
