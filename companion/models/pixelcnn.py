r"""An autoregressive prior over grids of discrete codes: a small PixelCNN (van den Oord et al., 2016).

The grid of codes k_1 … k_n (raster order) is modelled as

    p(k) = Π_t p(k_t | k_1, …, k_{t−1}),

each factor a softmax over the K codes computed by masked convolutions: a layer's output at
a position sees only the positions above it and to its left. The first layer (mask "A") also
hides the position itself; later layers (mask "B") may use it, since their input there
already depends only on earlier positions.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dataclasses import dataclass

from companion.models.base import Output, Prior, plain_fields, positive_int
from companion.runtime import plain


class MaskedConv2d(nn.Conv2d):
    """A k×k convolution whose kernel is zero at and after the centre (``"A"``) or after it (``"B"``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: str) -> None:
        if mask not in ("A", "B"):
            raise ValueError(f"mask must be 'A' or 'B', got {mask!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        m = torch.ones_like(self.weight)
        c = kernel_size // 2
        m[:, :, c, c + (mask == "B"):] = 0            # the centre row: from the centre (A) or after it (B)
        m[:, :, c + 1:, :] = 0                        # every row below the centre
        self.register_buffer("mask", m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One k×k convolution with the hidden taps zeroed. (Two smaller convolutions that skip
        # them do about half the arithmetic but ran slower on a 2-core CPU: oneDNN's k×k kernels
        # are faster than the odd shapes and the padding copies the split needs.)
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


@dataclass
class PixelCNNConfig:
    """Configuration of a :class:`PixelCNN`.

    Attributes:
        num_codes: K, the number of codes a position can take.
        channels: width of the hidden layers.
        layers: number of masked "B" layers after the first "A" layer.
        kernel_size: of the masked "B" convolutions (odd; the "A" layer uses 2·kernel_size + 1).
    """

    num_codes: int = 512
    channels: int = 64
    layers: int = 4
    kernel_size: int = 3

    def __post_init__(self) -> None:
        plain_fields(self)
        for name in ("num_codes", "channels", "layers", "kernel_size"):
            positive_int(self, name)
        if self.kernel_size % 2 != 1:
            raise ValueError(f"{type(self).__name__}.kernel_size must be odd, got {self.kernel_size}")


class PixelCNN(Prior):
    """p(k) over (h, w) grids of codes in 0…K−1 (config: :class:`PixelCNNConfig`;
    ``PixelCNN(K, channels=…, layers=…)`` builds one from its fields).

    ``forward(codes)`` takes the grids (B, h, w) or (B, 1, h, w), as integers or as floats
    holding whole numbers, and returns an
    :class:`Output` whose loss is −log p(k) in nats per grid and whose statistic
    ``bits_per_code`` is the same in bits per position.
    """

    config_class = PixelCNNConfig
    positional = ("num_codes",)

    def __init__(self, config: PixelCNNConfig | None = None, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        cfg = self.config
        self.num_codes = cfg.num_codes
        self.embed = nn.Embedding(cfg.num_codes, cfg.channels)
        body: list[nn.Module] = [MaskedConv2d(cfg.channels, cfg.channels, 2 * cfg.kernel_size + 1, "A"), nn.ReLU()]
        for _ in range(cfg.layers):
            body += [MaskedConv2d(cfg.channels, cfg.channels, cfg.kernel_size, "B"), nn.ReLU()]
        self.body = nn.Sequential(*body)
        self.head = nn.Conv2d(cfg.channels, cfg.num_codes, kernel_size=1)

    def _indices(self, codes: torch.Tensor, num_codes: int | None = None, what: str = "codes") -> torch.Tensor:
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects {what} as a torch.Tensor (B, h, w) of indices, got "
                            f"{type(codes).__name__}: convert with torch.as_tensor(...)")
        if codes.dim() == 4 and codes.shape[1] == 1:
            codes = codes[:, 0]
        if codes.dim() != 3:
            raise ValueError(f"{type(self).__name__} expects code grids (B, h, w) or (B, 1, h, w), "
                             f"got {tuple(codes.shape)}")
        k = codes.long()
        if codes.is_floating_point() and not torch.equal(k.to(codes.dtype), codes):
            raise ValueError("code grids must hold whole numbers")
        n = self.num_codes if num_codes is None else num_codes
        if k.numel() and (k.min() < 0 or k.max() >= n):
            raise ValueError(f"{what} must lie in 0…{n - 1}")
        return k

    def _split(self, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(codes, condition) from (B, 1, h, w) grids, or from (B, 2, h, w) grids whose second
        channel holds the conditioning codes (see :func:`stack_condition`)."""
        if grids.dim() == 4 and grids.shape[1] == 2:
            return grids[:, 0], grids[:, 1]
        return grids, None

    def logits(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K, h, w) of p(k_t | k_<t) at every position."""
        if cond is not None:
            raise ValueError("this PixelCNN is unconditional: it takes no condition")
        k = self._indices(codes)
        h = self.embed(k).permute(0, 3, 1, 2)                                    # (B, C, h, w)
        return self.head(self.body(h))

    def forward(self, grids: torch.Tensor, cond: torch.Tensor | None = None) -> Output:
        """−log p(k) of code grids (B, h, w) or (B, 1, h, w), given ``cond`` (the conditioning
        codes repeated to the grid's size) for a conditional prior; or of (B, 2, h, w) grids
        that hold both (:func:`stack_condition`)."""
        k, cond = self._codes_and_condition(grids, cond)
        nll = F.cross_entropy(self.logits(k, cond), k, reduction="sum") / len(k)   # nats per grid
        bits = nll / (k[0].numel() * math.log(2))
        return Output(loss=nll, stats={"bits_per_code": bits})

    def log_prob(self, grids: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(k) of each code grid (B,), in nats; grids and ``cond`` as :meth:`forward` takes them."""
        k, cond = self._codes_and_condition(grids, cond)
        return -F.cross_entropy(self.logits(k, cond), k, reduction="none").flatten(1).sum(1)

    def _codes_and_condition(self, grids: torch.Tensor, cond: torch.Tensor | None):
        if not isinstance(grids, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects code grids as a torch.Tensor (B, h, w), got "
                            f"{type(grids).__name__}: convert with torch.as_tensor(...)")
        codes, stacked = self._split(grids)
        if stacked is not None:
            if cond is not None:
                raise ValueError("the grids already hold a condition (B, 2, h, w): pass no cond")
            cond = stacked
        return self._indices(codes), cond

    @torch.no_grad()
    def sample(self, n: int, grid_shape: tuple[int, int], generator: torch.Generator | None = None,
               temperature: float = 1.0, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` grids (n, h, w) one position at a time in raster order (ancestral
        sampling); ``temperature`` < 1 sharpens each softmax, > 1 flattens it."""
        n, temperature = plain(n), plain(temperature)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int (the number of grids), got {n!r}")
        if (not isinstance(grid_shape, (tuple, list)) or len(grid_shape) != 2
                or any(isinstance(v, bool) or not isinstance(plain(v), int) or plain(v) < 1 for v in grid_shape)):
            raise TypeError(f"grid_shape must be a tuple of two positive ints (h, w), got {grid_shape!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        h, w = (int(plain(v)) for v in grid_shape)
        device = next(self.parameters()).device
        k = torch.zeros(n, h, w, dtype=torch.long, device=device)
        cond = cond.to(device) if cond is not None else None
        for i in range(h):
            # Row i's logits depend only on rows 0…i (the masks hide every row below), so the
            # rows below are left out: on average half the arithmetic of the whole grid.
            rows, c = k[:, : i + 1], None if cond is None else cond[:, : i + 1]
            for j in range(w):
                p = torch.softmax(self.logits(rows, c)[:, :, i, j] / temperature, dim=1)
                k[:, i, j] = _multinomial(p, generator).to(device)
        return k


def _multinomial(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per row of ``p`` (B, K); with a generator, drawn on the generator's device."""
    if generator is not None and generator.device != p.device:
        p = p.to(generator.device)
    return torch.multinomial(p, 1, generator=generator)[:, 0]


def repeat_codes(cond: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Conditioning codes (B, h', w') repeated along each axis to ``shape`` (h, w), a whole
    multiple of (h', w'): what a conditional prior takes as ``cond``."""
    if not isinstance(cond, torch.Tensor) or cond.dim() != 3:
        raise ValueError(f"expected conditioning codes (B, h', w'), got {tuple(getattr(cond, 'shape', ()))}")
    f = shape[0] // cond.shape[1]
    if f < 1 or shape[0] != f * cond.shape[1] or shape[1] != f * cond.shape[2]:
        raise ValueError(f"the grid {tuple(shape)} must be a whole multiple of the condition {tuple(cond.shape[1:])}")
    return cond.repeat_interleave(f, dim=1).repeat_interleave(f, dim=2)


def stack_condition(codes: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Grids (B, 2, h, w) float for a conditional prior: the codes (B, h, w) and the
    conditioning codes (B, h/f, w/f), repeated f times along each axis to the same size."""
    if codes.dim() != 3 or cond.dim() != 3 or len(codes) != len(cond):
        raise ValueError(f"expected codes (B, h, w) and cond (B, h', w'), got {tuple(codes.shape)}, {tuple(cond.shape)}")
    return torch.stack([codes, repeat_codes(cond, tuple(codes.shape[1:]))], dim=1).float()
