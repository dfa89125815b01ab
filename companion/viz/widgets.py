"""Latent-space explorers built from ipywidgets.

In a running kernel the sliders call the model and redraw (live mode). Images are sent as
small PNGs in an ``ipywidgets.Image``, so an explorer costs a few kilobytes per frame.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch


def to_png(image, scale: int = 4) -> bytes:
    """Encode one image (C, H, W) or (H, W) with values in [0, 1] as PNG bytes.

    Dark strokes on white, as in the book's figures; each pixel is blown up to a
    ``scale`` × ``scale`` block so the browser shows crisp pixels.
    """
    from PIL import Image

    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3:
        if a.shape[0] not in (1, 3):
            raise ValueError(f"expected (1 or 3, H, W), got {a.shape}")
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image (C, H, W) or (H, W), got shape {a.shape}")
    if scale < 1:
        raise ValueError(f"scale must be ≥ 1, got {scale}")
    a = np.clip(a, 0.0, 1.0)
    if a.ndim == 2:
        a = 1.0 - a  # ink is dark
    a = np.kron(a, np.ones((scale, scale) + (() if a.ndim == 2 else (1,)))) if scale > 1 else a
    buf = io.BytesIO()
    Image.fromarray((a * 255).round().astype(np.uint8)).save(buf, format="png", optimize=True)
    return buf.getvalue()


def latent_map(decode: Callable[[torch.Tensor], torch.Tensor], x_range=(-3.0, 3.0), y_range=(-3.0, 3.0),
               *, steps: int = 25, scale: int = 4):
    """A live explorer of a 2-D code: sliders z₁, z₂ → the decoded image f_θ(z).

    Args:
        decode: maps codes (B, 2) to images (B, C, H, W) in [0, 1], e.g. ``model.decode``.
        x_range, y_range: slider ranges for z₁ and z₂.
        steps: number of slider positions along each axis.
        scale: pixel magnification of the shown image.

    Returns:
        an ``ipywidgets.VBox`` with attributes ``sliders`` (z₁, z₂) and ``image``.
    """
    import ipywidgets as widgets

    if steps < 2:
        raise ValueError(f"steps must be ≥ 2, got {steps}")
    for name, r in (("x_range", x_range), ("y_range", y_range)):
        if len(r) != 2 or not r[0] < r[1]:
            raise ValueError(f"{name} must be (low, high) with low < high, got {r}")
    sliders = [widgets.FloatSlider(value=float((lo + hi) / 2), min=float(lo), max=float(hi),
                                   step=float(hi - lo) / (steps - 1), description=label,
                                   continuous_update=True, readout_format=".2f")
               for label, (lo, hi) in (("z₁", x_range), ("z₂", y_range))]
    image = widgets.Image(format="png")

    @torch.no_grad()
    def draw(_=None):
        z = torch.tensor([[sliders[0].value, sliders[1].value]], dtype=torch.float32)
        image.value = to_png(decode(z)[0], scale=scale)

    for s in sliders:
        s.observe(draw, names="value")
    draw()
    box = widgets.VBox([widgets.HBox(sliders), image])
    box.sliders, box.image = sliders, image
    return box
