r"""Sequences with known dynamics, for TD-VAE (chapter 10). Generated offline, seeded.

* :func:`moving_digits`: a digit that moves one pixel left or right per step and wraps around
  at the border (the MNIST experiment of Gregor et al., 2019). The state is the horizontal
  shift (a position on a circle of ``W`` pixels) and the direction (velocity ±1).
* :func:`oscillator`: a noisy harmonic oscillator, p_{t+1} = p_t + v_{t+1},
  v_{t+1} = v_t − ω² p_t + σ ε_t (symplectic Euler, so the orbit neither grows nor shrinks on
  average), observed as a blurred dot on a strip of pixels or as a noisy 1-D signal. The state is
  (position, velocity); the velocity is never shown in a single frame.

Both return :class:`Sequences`: ``frames`` (N, T, ...) float32, the true ``position`` and
``velocity`` (N, T) for probes, and ``labels`` (N,) (the digit, or −1).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from companion.runtime import check_count, check_seed


class Sequences(NamedTuple):
    """``frames`` (N, T, C, H, W) or (N, T, D) float32; ``position``, ``velocity`` (N, T) float32;
    ``labels`` (N,) int64 (−1 where there is no class)."""

    frames: torch.Tensor
    position: torch.Tensor
    velocity: torch.Tensor
    labels: torch.Tensor


def moving_digits(images: torch.Tensor, labels: torch.Tensor | None = None, *, length: int = 16,
                  n: int | None = None, seed: int = 0) -> Sequences:
    """``n`` sequences of ``length`` frames, each a randomly chosen digit from ``images``
    (M, 1, H, W) rolled one pixel per step to the left or the right (wrapping around), from a
    random starting shift. ``position`` is the shift in pixels, 0 … W−1; ``velocity`` is ±1."""
    seed = check_seed(seed)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (M, C, H, W), got {getattr(images, 'shape', type(images))}")
    check_count("length", length, 2)
    m, _, _, w = images.shape
    n = m if n is None else n
    check_count("n", n, 1)
    if labels is not None and not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)                     # a NumPy array or a list of labels
    if labels is not None and len(labels) != m:
        raise ValueError(f"labels must have one entry per image ({m}), got {len(labels)}")
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(m, (n,), generator=g)
    start = torch.randint(w, (n,), generator=g)
    direction = torch.randint(2, (n,), generator=g) * 2 - 1                       # −1 or +1
    shift = (start[:, None] + direction[:, None] * torch.arange(length)) % w        # (n, T)
    cols = (torch.arange(w) - shift[:, :, None]) % w                              # source column of each pixel
    digits = images[which]                                                          # (n, C, H, W)
    frames = torch.gather(digits[:, None].expand(-1, length, -1, -1, -1), 4,
                          cols[:, :, None, None, :].expand(-1, -1, *digits.shape[1:3], -1))
    y = labels[which].long() if labels is not None else torch.full((n,), -1, dtype=torch.long)
    return Sequences(frames.contiguous(), shift.float(), direction[:, None].expand(-1, length).float(), y)


def oscillator(n: int, length: int = 20, *, period: float = 12.0, amplitude: tuple[float, float] = (0.3, 0.9),
               noise: float = 0.01, render: str = "dot", size: int = 32, width: float = 1.0,
               signal_noise: float = 0.05, seed: int = 0) -> Sequences:
    """``n`` noisy harmonic oscillations of ``length`` steps with angular frequency 2π/``period``
    per step, random amplitude and phase.

    ``render="dot"`` draws each position p ∈ [−1, 1] as a Gaussian bump of ``width`` pixels on a
    strip of ``size`` pixels, frames (N, T, 1, 1, size) in [0, 1]; ``render="signal"`` gives the
    position plus Gaussian noise of std ``signal_noise``, frames (N, T, 1).
    """
    seed = check_seed(seed)
    check_count("n", n, 1)
    check_count("length", length, 2)
    if render not in ("dot", "signal"):
        raise ValueError(f"render must be 'dot' or 'signal', got {render!r}")
    if not period > 2 * math.pi / 2:
        raise ValueError(f"period must exceed π steps for a stable orbit, got {period!r}")
    lo, hi = amplitude
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"amplitude must be a range inside (0, 1], got {amplitude!r}")
    if noise < 0 or signal_noise < 0:
        raise ValueError("noise levels must be ≥ 0")
    g = torch.Generator().manual_seed(seed)
    omega = 2 * math.pi / period
    a = lo + (hi - lo) * torch.rand(n, generator=g)
    phase = 2 * math.pi * torch.rand(n, generator=g)
    p, v = a * torch.cos(phase), -a * omega * torch.sin(phase)
    eps = torch.randn(n, length, generator=g) * noise
    position, velocity = torch.empty(n, length), torch.empty(n, length)
    for t in range(length):                                         # a loop over time, not over samples
        position[:, t], velocity[:, t] = p, v
        v = v - omega ** 2 * p + eps[:, t]
        p = p + v
    if render == "signal":
        frames = (position + signal_noise * torch.randn(n, length, generator=g))[:, :, None]
    else:
        centre = (position.clamp(-1, 1) + 1) / 2 * (size - 1)                         # pixel coordinate
        frames = torch.exp(-0.5 * ((torch.arange(size) - centre[:, :, None]) / width) ** 2)[:, :, None, None, :]
    return Sequences(frames.float().contiguous(), position, velocity, torch.full((n,), -1, dtype=torch.long))


def dot_position(frames: torch.Tensor) -> torch.Tensor:
    """The inverse of ``oscillator(render="dot")``: the position p ∈ [−1, 1] of the dot in each
    strip, from its centre of mass. Frames (..., size) with non-negative values, e.g. a model's
    predicted strips (N, T, 1, 1, size); returns (...) without the last axis."""
    if not isinstance(frames, torch.Tensor) or not frames.is_floating_point() or frames.dim() < 1:
        raise ValueError("frames must be a float tensor of strips (..., size)")
    if frames.shape[-1] < 2 or (frames < 0).any():
        raise ValueError("strips need at least 2 pixels and non-negative values")
    size = frames.shape[-1]
    centre = (frames * torch.arange(size, dtype=frames.dtype)).sum(-1) / frames.sum(-1).clamp_min(1e-12)
    return centre / (size - 1) * 2 - 1


def circle(seqs: Sequences, width: int = 28) -> torch.Tensor:
    """The wrapped horizontal shift of moving digits as a point on the unit circle (N, T, 2):
    a linear probe cannot follow the jump from W−1 back to 0, but it can follow (cos, sin)."""
    if not isinstance(seqs, Sequences):
        raise TypeError(f"circle expects Sequences (from moving_digits), got {type(seqs).__name__}")
    check_count("width", width, 1)
    angle = 2 * torch.pi * seqs.position / width
    return torch.stack([angle.cos(), angle.sin()], dim=-1)
