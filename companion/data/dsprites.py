r"""dSprites, rendered procedurally (Matthey et al., 2017).

The original data set is every combination of five generative factors, each image a white
sprite on black:

=============  ======  ==========================================================
factor         values
=============  ======  ==========================================================
shape          3       square, ellipse, heart
scale          6       0.5 … 1 (linearly spaced)
orientation    40      0 … 2π (linearly spaced, 2π excluded: see below)
pos_x          32      0 … 1 (left to right)
pos_y          32      0 … 1 (top to bottom)
=============  ======  ==========================================================

3 · 6 · 40 · 32 · 32 = 737,280 images. We draw them ourselves from an implicit function of
each shape, evaluated at the pixel centres, so any factor combination can be rendered on
demand, at 64×64 (the original size) or 32×32 (the CPU default), with no download.

Differences from the original files, on purpose: the orientation grid stops before 2π (the
original repeats 0 as 2π, so its first and last orientations are the same image), and the
shapes are our own drawings of a square, an ellipse and a heart at comparable areas.

>>> ds = DSprites(size=32)
>>> batch = ds.sample(1000, seed=0)     # images (1000, 1, 32, 32), classes (1000, 5), values (1000, 5)
>>> x = ds.render(batch.classes)        # the same images again
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from companion.runtime import check_seed

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")

# Radius of a sprite at scale 1 and the margin kept free around the sprite centres, as
# fractions of the image side: a sprite at any scale and orientation stays inside the image.
_RADIUS = 0.17
_MARGIN = 0.21
_SUPERSAMPLE = 3


class Sprites(NamedTuple):
    """A batch of dSprites: ``images`` (N, 1, S, S) float32 in {0, 1}, ``classes`` (N, 5) int64
    (the index of each factor's value), ``values`` (N, 5) float32 (the values themselves)."""

    images: torch.Tensor
    classes: torch.Tensor
    values: torch.Tensor


class DSprites:
    """The dSprites factor grid and a vectorised renderer.

    Args:
        size: image side in pixels, 32 (default, for CPUs) or 64 (the original).

    Attributes:
        factor_names: ``("shape", "scale", "orientation", "pos_x", "pos_y")``.
        factor_sizes: number of values of each factor, ``(3, 6, 40, 32, 32)``.
        factor_values: one float array per factor (shape: 0, 1, 2 for square, ellipse, heart).
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES

    def __init__(self, size: int = 32) -> None:
        if isinstance(size, bool) or size not in (32, 64):
            raise ValueError(f"DSprites renders 32×32 or 64×64 images, got size={size!r}")
        self.size = size
        self.factor_values = (
            np.arange(3, dtype=np.float32),
            np.linspace(0.5, 1.0, 6, dtype=np.float32),
            np.linspace(0.0, 2 * math.pi, 40, endpoint=False, dtype=np.float32),
            np.linspace(0.0, 1.0, 32, dtype=np.float32),
            np.linspace(0.0, 1.0, 32, dtype=np.float32),
        )
        # Sprites are drawn inside a box of B×B pixels around their centre (every shape fits in
        # the disc of radius _RADIUS·scale), sampled at _SUPERSAMPLE² sub-pixel centres.
        self._box = math.ceil(2 * 1.1 * _RADIUS * size) + 2
        k = _SUPERSAMPLE
        self._sub = (torch.arange(self._box * k, dtype=torch.float32) + 0.5) / k   # (B·k,) in pixels

    def __repr__(self) -> str:
        return f"DSprites(size={self.size})"

    @property
    def num_combinations(self) -> int:
        """Size of the full factor grid: 737,280."""
        return math.prod(self.factor_sizes)

    # -- factors ---------------------------------------------------------------------------
    def check_classes(self, classes) -> torch.Tensor:
        """``classes`` as an (N, 5) int64 tensor, or a ``ValueError`` naming the bad factor."""
        c = torch.as_tensor(classes)
        if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
            raise TypeError(f"factor classes must be integers (indices of factor values), got dtype {c.dtype}")
        if c.dim() == 1:
            c = c[None]
        if c.dim() != 2 or c.shape[1] != 5:
            raise ValueError(f"factor classes must have shape (N, 5) for {FACTOR_NAMES}, got {tuple(c.shape)}")
        c = c.long()
        for j, (name, n) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
            bad = (c[:, j] < 0) | (c[:, j] >= n)
            if bad.any():
                raise ValueError(f"factor {name!r} takes classes 0…{n - 1}, got {c[:, j][bad][0].item()}")
        return c

    def classes_for(self, shape="square", scale=1.0, orientation=0.0, pos_x=0.5, pos_y=0.5) -> torch.Tensor:
        """Factor classes (N, 5) of factors given by *value*, each snapped to the nearest grid value.

        ``shape`` is a name (``"square"``, ``"ellipse"``, ``"heart"``) or a list of names; the
        other factors are numbers or 1-D sequences (broadcast together): scale in [0.5, 1],
        orientation in [0, 2π) radians (taken modulo 2π), positions in [0, 1].

        >>> DSprites().classes_for("heart", scale=[0.5, 1.0], pos_x=0.0)   # two large/small hearts
        """
        names = [shape] if isinstance(shape, str) else list(shape)
        for name in names:
            if name not in SHAPE_NAMES:
                raise ValueError(f"unknown shape {name!r}; dSprites has {SHAPE_NAMES}")
        columns = [torch.tensor([float(SHAPE_NAMES.index(n)) for n in names], dtype=torch.float64)]
        for j, (name, value) in enumerate(zip(FACTOR_NAMES[1:], (scale, orientation, pos_x, pos_y)), start=1):
            v = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
            if not torch.isfinite(v).all():
                raise ValueError(f"{name} must be finite, got {value!r}")
            grid = torch.from_numpy(self.factor_values[j]).double()
            if name == "orientation":
                v = torch.remainder(v, 2 * math.pi)
            else:
                lo, hi = grid[0].item(), grid[-1].item()
                if (v < lo - 1e-6).any() or (v > hi + 1e-6).any():
                    raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}")
            columns.append(v)
        columns = torch.broadcast_tensors(*columns)
        out = torch.empty(len(columns[0]), 5, dtype=torch.long)
        out[:, 0] = columns[0].long()
        for j in range(1, 5):
            grid = torch.from_numpy(self.factor_values[j]).double()
            dist = (columns[j][:, None] - grid[None]).abs()
            if j == 2:                                        # orientation wraps around
                dist = torch.minimum(dist, 2 * math.pi - dist)
            out[:, j] = dist.argmin(1)
        return out

    def values_of(self, classes) -> torch.Tensor:
        """The factor values (N, 5) float32 of factor classes (N, 5)."""
        c = self.check_classes(classes).numpy()
        return torch.from_numpy(np.stack([v[c[:, j]] for j, v in enumerate(self.factor_values)], axis=1))

    def index_of(self, classes) -> torch.Tensor:
        """The position (N,) of each combination in the full grid, shape the slowest factor."""
        c = self.check_classes(classes)
        index = torch.zeros(len(c), dtype=torch.long)
        for j, n in enumerate(FACTOR_SIZES):
            index = index * n + c[:, j]
        return index

    def classes_of(self, index) -> torch.Tensor:
        """The factor classes (N, 5) of grid positions (N,); the inverse of :meth:`index_of`."""
        i = torch.as_tensor(index)
        if i.is_floating_point() or i.dim() != 1:
            raise ValueError(f"grid positions must be a 1-D integer tensor, got {tuple(i.shape)} {i.dtype}")
        if len(i) and (i.min() < 0 or i.max() >= self.num_combinations):
            raise ValueError(f"grid positions run from 0 to {self.num_combinations - 1}")
        out = torch.empty(len(i), 5, dtype=torch.long)
        i = i.long().clone()
        for j in reversed(range(5)):
            out[:, j] = i % FACTOR_SIZES[j]
            i = i // FACTOR_SIZES[j]
        return out

    def sample_classes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` factor combinations drawn uniformly from the grid, (n, 5) int64."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int ≥ 0, got {n!r}")
        return torch.stack([torch.randint(s, (n,), generator=generator) for s in FACTOR_SIZES], dim=1)

    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> Sprites:
        """``n`` images with factors drawn uniformly, reproducible from ``seed`` (or ``generator``)."""
        seed = seed if seed is None else check_seed(seed)
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        classes = self.sample_classes(n, generator)
        return Sprites(self.render(classes), classes, self.values_of(classes))

    def subset(self, **kept) -> "SpriteSubset":
        """This grid restricted to some classes of each factor (see :class:`SpriteSubset`)."""
        return SpriteSubset(self, **kept)

    # -- rendering -------------------------------------------------------------------------
    def render(self, classes, chunk: int = 4096) -> torch.Tensor:
        """Images (N, 1, S, S) float32 in {0, 1} of factor combinations ``classes`` (N, 5)."""
        c = self.check_classes(classes)
        v = self.values_of(c)
        out = torch.empty(len(c), 1, self.size, self.size)
        for start in range(0, len(c), chunk):
            out[start:start + chunk, 0] = self._draw(c[start:start + chunk, 0], v[start:start + chunk, 1:])
        return out

    def _draw(self, shape: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Render (n, S, S) sprites; ``v`` holds (scale, orientation, pos_x, pos_y) per sprite.

        A pixel is white when more than half of its sub-pixel centres lie inside the sprite.
        """
        n, S, B, k = len(shape), self.size, self._box, _SUPERSAMPLE
        scale, angle, pos_x, pos_y = v.unbind(1)                                   # (n,) each
        cx = (_MARGIN + (1 - 2 * _MARGIN) * pos_x) * S                             # centre, in pixels
        cy = (_MARGIN + (1 - 2 * _MARGIN) * pos_y) * S
        x0 = (cx - B / 2).floor().clamp(0, S - B)                                  # box corner
        y0 = (cy - B / 2).floor().clamp(0, S - B)
        dx = (x0[:, None] + self._sub - cx[:, None])[:, None, :]                   # (n, 1, B·k)
        dy = (y0[:, None] + self._sub - cy[:, None])[:, :, None]                   # (n, B·k, 1)
        # Rotate the offsets by −θ and divide by the radius: (u, w) are coordinates in the
        # sprite's own frame, where each shape fits (about) the unit disc; w points up.
        r = (_RADIUS * S * scale)[:, None, None]
        cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
        u = (cos * dx - sin * dy) / r                                               # (n, B·k, B·k)
        w = -(sin * dx + cos * dy) / r
        inside = torch.zeros(n, B * k, B * k, dtype=torch.bool)
        for s, fn in enumerate((_square, _ellipse, _heart)):
            m = shape == s
            if m.any():
                inside[m] = fn(u[m], w[m])
        box = inside.float().unflatten(1, (B, k)).unflatten(3, (B, k)).mean((2, 4)) > 0.5   # (n, B, B)
        # Paste each box into a black image at its corner.
        rows = (y0.long()[:, None] + torch.arange(B))[:, :, None] * S               # (n, B, 1)
        cols = (x0.long()[:, None] + torch.arange(B))[:, None, :]                   # (n, 1, B)
        out = torch.zeros(n, S * S)
        out.scatter_(1, (rows + cols).flatten(1), box.flatten(1).float())
        return out.view(n, S, S)


class SpriteSubset:
    """dSprites restricted to some values of each factor (a reduced factor grid).

    ``DSprites(32).subset(shape="ellipse", scale=5, orientation=0, pos_y=range(8, 24))``
    keeps one ellipse at the largest scale, unrotated, every x position and the middle half
    of the y positions. A factor given one class is fixed and leaves the grid; ``classes``
    index the *kept* values of the factors that still vary (``factor_names``), so the
    disentanglement metrics see only those. ``render`` and ``sample`` work as on
    :class:`DSprites`.
    """

    def __init__(self, dataset: DSprites, **kept) -> None:
        if not isinstance(dataset, DSprites):
            raise TypeError(f"SpriteSubset restricts a DSprites, got {type(dataset).__name__}")
        unknown = sorted(set(kept) - set(FACTOR_NAMES))
        if unknown:
            raise ValueError(f"unknown factor(s) {unknown}; dSprites has {FACTOR_NAMES}")
        self.dataset, self.size = dataset, dataset.size
        self.values: list[torch.Tensor] = []                      # kept classes of each of the five factors
        for name, n in zip(FACTOR_NAMES, FACTOR_SIZES):
            v = kept.get(name, range(n))
            if name == "shape" and isinstance(v, str):
                v = SHAPE_NAMES.index(v) if v in SHAPE_NAMES else v
            if name == "shape" and not isinstance(v, (int, range)) and all(isinstance(e, str) for e in v):
                v = [SHAPE_NAMES.index(e) if e in SHAPE_NAMES else e for e in v]
            items = [v] if isinstance(v, (int, str)) else list(v) if isinstance(v, (range, list, tuple)) else None
            if items is None or not all(isinstance(e, int) and not isinstance(e, bool) for e in items):
                extra = f" or a shape name {SHAPE_NAMES}" if name == "shape" else ""
                raise ValueError(f"{name}: give a class index{extra} or a non-empty sequence of them, got {v!r}")
            if not items:
                raise ValueError(f"{name}: give a class index or a non-empty sequence of them, got {v!r}")
            idx = torch.as_tensor(items, dtype=torch.long)
            if (idx < 0).any() or (idx >= n).any() or len(idx.unique()) != len(idx):
                raise ValueError(f"{name}: classes must be distinct and lie in 0…{n - 1}, got {idx.tolist()}")
            self.values.append(idx)
        self.varying = [j for j, v in enumerate(self.values) if len(v) > 1]
        if not self.varying:
            raise ValueError("every factor is fixed: keep more than one value of at least one factor")
        self.factor_names = tuple(FACTOR_NAMES[j] for j in self.varying)
        self.factor_sizes = tuple(len(self.values[j]) for j in self.varying)

    def __repr__(self) -> str:
        return f"SpriteSubset({self.dataset!r}, varying={self.factor_names}, sizes={self.factor_sizes})"

    def full_classes(self, classes) -> torch.Tensor:
        """The five-factor classes (N, 5) of the DSprites grid for subset classes (N, K)."""
        c = torch.as_tensor(classes)
        if c.is_floating_point() or c.dtype == torch.bool or c.dim() != 2 or c.shape[1] != len(self.varying):
            raise ValueError(f"subset classes must be integers of shape (N, {len(self.varying)}) for "
                             f"{self.factor_names}, got {tuple(c.shape)} {c.dtype}")
        out = torch.stack([v[:1].expand(len(c)) for v in self.values], dim=1).clone()
        for i, j in enumerate(self.varying):
            col, n = c[:, i].long(), len(self.values[j])
            if len(col) and (col.min() < 0 or col.max() >= n):
                raise ValueError(f"factor {FACTOR_NAMES[j]!r} of this subset takes classes 0…{n - 1}")
            out[:, j] = self.values[j][col]
        return out

    def render(self, classes) -> torch.Tensor:
        """Images (N, 1, S, S) of subset classes (N, K)."""
        return self.dataset.render(self.full_classes(classes))

    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> Sprites:
        """``n`` images drawn uniformly from the subset; ``classes`` and ``values`` cover the
        varying factors only."""
        seed = seed if seed is None else check_seed(seed)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int ≥ 0, got {n!r}")
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        classes = torch.stack([torch.randint(s, (n,), generator=generator) for s in self.factor_sizes], dim=1)
        full = self.full_classes(classes)
        return Sprites(self.dataset.render(full), classes, self.dataset.values_of(full)[:, self.varying])


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u.abs() <= 0.7) & (v.abs() <= 0.7)


def _ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1.0


def _heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # (x² + y² − 1)³ − x² y³ ≤ 0 spans about x ∈ [−1.14, 1.14], y ∈ [−1, 1.24]; shrink to the disc.
    x, y = u * 1.2, v * 1.2 + 0.12
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0
