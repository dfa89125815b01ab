"""Figures the chapters share: image grids, loss curves, code scatter plots, decoded maps."""
from __future__ import annotations

import math

import numpy as np
import torch


def _axes(ax, figsize=(4, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def image_array(images) -> np.ndarray:
    """Images as a float32 NumPy array with values in [0, 1] for drawing: a tensor of any float
    dtype (bfloat16 too) or an array; uint8 images (0…255) are divided by 255. NaN or inf is
    refused, as is anything that is not a number array."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        images = images.float() if images.is_floating_point() else images
        a = images.numpy()
    else:
        a = np.asarray(images)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255
    if a.dtype.kind not in "fiub":
        raise TypeError(f"expected images as numbers (a tensor or an array), got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise ValueError("the images hold NaN or infinite values")
    return a


def _count(value, name: str, low: int = 1) -> int:
    """A count argument (``nrow``, ``scale``, ``steps``): an int ≥ ``low`` (NumPy ints too)."""
    from companion.runtime import plain

    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
    return value


def _span(value, name: str) -> list[float]:
    """A range argument (``x_range``, ``span``): (low, high), finite, low < high, as two floats."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (low, high), got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be (low, high) with low < high, got {value!r}")
    return [lo, hi]


def _to_numpy_images(images) -> np.ndarray:
    a = image_array(images)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W) or (N, H, W), got {a.shape}")
    if a.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {a.shape[1]}")
    if len(a) == 0:
        raise ValueError("got no images (N = 0): expected at least one")
    return a


def tile(images, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Arrange (N, C, H, W) images into one (H', W') or (H', W', 3) array, ``nrow`` per row."""
    a = _to_numpy_images(images)
    n, c, h, w = a.shape
    ncol = math.ceil(math.sqrt(n)) if nrow is None else _count(nrow, "nrow")
    nrows = math.ceil(n / ncol)
    out = np.full((c, nrows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        out[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = a[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def image_grid(images, nrow: int | None = None, ax=None, title: str | None = None, cmap: str = "gray_r"):
    """Show images (N, C, H, W) with values in [0, 1] as one grid; returns the axes."""
    ax = _axes(ax)
    ax.imshow(tile(images, nrow), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, ax=None, terms: list[str] | None = None, logy: bool = False,
                 ylabel: str = "loss per example"):
    """Loss curves of a :class:`companion.train.History`: train solid, validation dashed."""
    if not isinstance(getattr(history, "train", None), dict):
        raise TypeError(f"plot_history needs a History (what fit returns), got {type(history).__name__}")
    ax = _axes(ax, figsize=(5, 3.2))
    terms = terms or [t for t in history.train if t != "loss" or len(history.train) == 1] or ["loss"]
    for i, term in enumerate(terms):
        if term not in history.train:
            raise KeyError(f"no term {term!r} in history; have {sorted(history.train)}")
        color = f"C{i}"
        epochs = np.arange(1, len(history.train[term]) + 1)
        ax.plot(epochs, history.train[term], color=color, label=f"{term} (train)")
        if term in history.val:
            ax.plot(epochs, history.val[term], color=color, ls="--", label=f"{term} (held out)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    return ax


def scatter_codes(z, labels=None, ax=None, title: str | None = None, s: float = 4.0):
    """Scatter 2-D codes (N, 2), coloured by integer labels when given."""
    z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"scatter_codes needs 2-D codes of shape (N, 2), got {z.shape}")
    ax = _axes(ax)
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=s, alpha=0.6)
    else:
        labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if labels.shape != (len(z),) or labels.dtype.kind not in "iu" or (len(labels) and labels.min() < 0):
            raise ValueError(f"labels must be N = {len(z)} non-negative integers, got {labels.dtype} {labels.shape}")
        k = int(labels.max()) + 1 if len(labels) else 1
        if k > 20:
            raise ValueError(f"scatter_codes colours up to 20 classes, got labels up to {k - 1}")
        cmap = "tab10" if k <= 10 else "tab20"
        n = 10 if k <= 10 else 20
        sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=cmap, s=s, alpha=0.7, vmin=-0.5, vmax=n - 0.5)
        cbar = ax.figure.colorbar(sc, ax=ax, ticks=range(n), fraction=0.046, pad=0.04)
        cbar.set_label("digit" if k <= 10 else "class")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def decoded_grid(decode, x_range: tuple[float, float], y_range: tuple[float, float], n: int = 15, *,
                 device: str | torch.device | None = None) -> torch.Tensor:
    """Decode an n × n grid of 2-D codes: rows go down in z₂, columns right in z₁.

    ``decode`` maps codes (B, 2) to images: a model, its ``decode`` (for a VAE, the images are
    the decoder's means) or any function; the codes are made on ``device`` (default: the device
    of that model, else the CPU).
    Returns images (n·n, C, H, W) on the CPU, ready for :func:`image_grid` with ``nrow=n``.
    """
    from companion.models.base import device_of, image_decoder

    decode = image_decoder(decode)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    z1 = torch.linspace(*x_range, n)
    z2 = torch.linspace(*y_range, n).flip(0)
    grid = torch.stack(torch.meshgrid(z2, z1, indexing="ij"), dim=-1).reshape(-1, 2)[:, [1, 0]]
    device = torch.device(device) if device is not None else device_of(decode)
    return decode(grid.to(device)).clamp(0, 1).cpu()


def plot_filters(weight: torch.Tensor, image_shape, n: int = 48, nrow: int = 8, ax=None, title: str | None = None):
    """Draw the first ``n`` rows of a first-layer weight matrix (units × pixels) as images.

    Each filter is scaled by its largest absolute weight; red is positive, blue negative.
    """
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"plot_filters expects a weight tensor (units, pixels), got {type(weight).__name__}")
    if (not isinstance(image_shape, (tuple, list, torch.Size)) or len(image_shape) < 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in image_shape)):
        raise TypeError(f"image_shape must be a tuple of ints such as (1, 28, 28), got {image_shape!r}")
    w = weight.detach().cpu().float()[:_count(n, "n")]
    h, wd = image_shape[-2:]
    if w.dim() != 2 or w.shape[1] != h * wd:
        raise ValueError(f"expected weights of shape (units, {h * wd}), got {tuple(weight.shape)}")
    w = w / w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    ax = _axes(ax, figsize=(5, 5))
    ax.imshow(tile(((w + 1) / 2).reshape(-1, 1, h, wd), nrow=nrow, pad_value=0.5), cmap="RdBu_r", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
