"""Latent-space explorers that work in a kernel *and* on the static website.

One helper, :func:`static_interact`, serves every chapter. It takes a function of up to
three parameters and a list of values for each, and returns sliders plus an image:

* **live** mode (the default in a kernel): moving a slider calls the function and redraws;
* **static** mode (the book's build sets ``COMPANION_WIDGETS=static``): the function is
  called once for every combination of values, each result is rendered into a small PNG
  frame, the frames are nested in one ``ipywidgets.Stack`` per axis, and each slider is
  tied to its level of stacks with ``widgets.jslink``. The links run in the browser, so the
  sliders keep working in the built HTML where no kernel runs.

A frame is what the function returns: an image tensor (C, H, W) or (H, W) in [0, 1], a
batch (N, C, H, W) shown as one row, or a matplotlib figure.
"""
from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

MODES = ("live", "static")
MAX_AXES = 3
MAX_FRAMES = 25


def default_mode() -> str:
    """``"static"`` when the environment variable ``COMPANION_WIDGETS`` says so, else ``"live"``."""
    mode = os.environ.get("COMPANION_WIDGETS", "live").strip().lower()
    if mode not in MODES:
        raise ValueError(f"COMPANION_WIDGETS must be one of {MODES}, got {mode!r}")
    return mode


def to_png(image, scale: int = 4) -> bytes:
    """Encode one image (C, H, W) or (H, W) with values in [0, 1] as PNG bytes.

    Dark strokes on white, as in the book's figures; each pixel is blown up to a
    ``scale`` × ``scale`` block so the browser shows crisp pixels.
    """
    from PIL import Image

    from companion.viz.plots import _count, image_array

    a = image_array(image)
    scale = _count(scale, "scale")
    if a.ndim == 3:
        if a.shape[0] not in (1, 3):
            raise ValueError(f"expected (1 or 3, H, W), got {a.shape}")
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image (C, H, W) or (H, W), got shape {a.shape}")
    a = np.clip(a, 0.0, 1.0)
    if a.ndim == 2:
        a = 1.0 - a  # ink is dark
    a = np.kron(a, np.ones((scale, scale) + (() if a.ndim == 2 else (1,)))) if scale > 1 else a
    buf = io.BytesIO()
    Image.fromarray((a * 255).round().astype(np.uint8)).save(buf, format="png", optimize=True)
    return buf.getvalue()


def render_frame(result, scale: int = 4) -> bytes:
    """PNG bytes of what an explorer function returned (image, batch of images, or figure)."""
    if hasattr(result, "savefig"):  # a matplotlib figure
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        result.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        plt.close(result)
        return buf.getvalue()
    if not isinstance(result, (torch.Tensor, np.ndarray)):
        raise TypeError(f"an explorer function must return an image or a figure (tensor, array or matplotlib "
                        f"Figure), got {type(result).__name__}")
    if isinstance(result, torch.Tensor) and result.dim() == 4:
        from companion.viz.plots import tile

        return to_png(tile(result, nrow=len(result)), scale=scale)
    return to_png(result, scale=scale)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, read from its IHDR header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _image(png: bytes):
    """An ``ipywidgets.Image`` shown at the PNG's own size (no stretching by the page)."""
    import ipywidgets as widgets

    w, h = png_size(png)
    return widgets.Image(value=png, format="png",
                         layout=widgets.Layout(width=f"{w}px", height=f"{h}px", border="0"))


def _check_axes(axes: dict[str, Sequence]) -> dict[str, list]:
    if not 1 <= len(axes) <= MAX_AXES:
        raise ValueError(f"static_interact takes 1 to {MAX_AXES} axes, got {len(axes)}")
    out = {}
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(f"axis {name!r} takes a list of values such as [-2, -1, 0, 1, 2], got {values!r}")
        values = [v.item() if isinstance(v, (torch.Tensor, np.generic)) else v for v in values]
        if len(values) < 2:
            raise ValueError(f"axis {name!r} needs at least 2 values, got {len(values)}")
        out[name] = values
    frames = int(np.prod([len(v) for v in out.values()]))
    if frames > MAX_FRAMES:
        raise ValueError(f"{frames} frames is too many for one page (at most {MAX_FRAMES}): "
                         "use fewer values per axis")
    return out


def _label(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def static_interact(f: Callable[..., object], *, mode: str | None = None, scale: int = 5,
                    description: str = "", **axes: Sequence):
    """An explorer of ``f`` over up to three axes of values, live or pre-computed.

    Args:
        f: called as ``f(**{axis: value})``; returns an image, a batch of images, or a
            matplotlib figure.
        mode: ``"live"`` or ``"static"``; default from ``COMPANION_WIDGETS`` (live).
        scale: pixel magnification of image frames.
        description: a caption shown above the sliders.
        **axes: each axis name and its values, e.g. ``z1=[-2, -1, 0, 1, 2]`` (2 to 25
            values; at most 25 frames in all).

    Returns:
        an ``ipywidgets.VBox`` with attributes ``sliders`` (one ``SelectionSlider`` per axis),
        ``mode``, ``frames`` (static: every frame's ``Image`` widget, in ``itertools.product``
        order), ``links`` (static: the ``jslink`` of each slider to each of its stacks) and
        ``image`` (the widget that shows the current frame; live mode).
    """
    import ipywidgets as widgets

    from companion.viz.plots import _count

    if not callable(f):
        raise TypeError(f"static_interact needs a callable that draws a frame, got {type(f).__name__}")
    scale = _count(scale, "scale")
    mode = mode or default_mode()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    axes = _check_axes(axes)
    names = list(axes)
    sliders = [widgets.SelectionSlider(options=[(_label(v), i) for i, v in enumerate(axes[n])],
                                       value=len(axes[n]) // 2, description=n, continuous_update=True)
               for n in names]
    if mode == "live":
        def frame_now() -> bytes:
            kwargs = {n: axes[n][s.value] for n, s in zip(names, sliders)}
            with torch.no_grad():
                return render_frame(f(**kwargs), scale=scale)

        image = _image(frame_now())

        def draw(_=None):
            image.value = frame_now()

        for s in sliders:
            s.observe(draw, names="value")
        shown, frames, links = image, [], []
    else:
        frames = []
        stacks: list[list] = [[] for _ in names]   # stacks[i]: every Stack that slider i drives

        def build(level: int, fixed: dict):
            """The Stack over axis ``level``, with the values of the axes before it fixed."""
            name = names[level]
            children = []
            for v in axes[name]:
                if level + 1 < len(names):
                    children.append(build(level + 1, {**fixed, name: v}))
                else:
                    with torch.no_grad():
                        png = render_frame(f(**fixed, **{name: v}), scale=scale)
                    children.append(_image(png))
                    frames.append(children[-1])
            stack = widgets.Stack(children, selected_index=sliders[level].value)
            stacks[level].append(stack)
            return stack

        shown = build(0, {})
        links = [widgets.jslink((slider, "index"), (stack, "selected_index"))
                 for slider, level in zip(sliders, stacks) for stack in level]

    parts = ([widgets.HTML(f"<b>{description}</b>")] if description else []) + [widgets.VBox(sliders), shown]
    box = widgets.VBox(parts)
    box.sliders, box.mode, box.frames, box.links = sliders, mode, frames, links
    box.image = shown if mode == "live" else None
    box.add_class("companion-explorer")
    return box


def latent_map(decode: Callable[[torch.Tensor], torch.Tensor], x_range=(-3.0, 3.0), y_range=(-3.0, 3.0),
               *, steps: int = 5, scale: int = 5, mode: str | None = None,
               device: str | torch.device | None = None):
    """Explore a 2-D code: sliders z₁, z₂ → the decoded image f_θ(z).

    Args:
        decode: maps codes (B, 2) to images (B, C, H, W) in [0, 1]: a model, its ``decode``
            (for a VAE, the decoder's means are shown) or any function.
        x_range, y_range: (low, high) ranges of z₁ and z₂.
        steps: slider positions along each axis (static mode: steps² ≤ 25 frames).
        scale: pixel magnification.
        mode: ``"live"`` or ``"static"`` (see :func:`static_interact`).
        device: where the codes are made (default: the device of the model ``decode`` is a
            method of, else the CPU).
    """
    from companion.models.base import device_of, image_decoder

    decode = image_decoder(decode)
    from companion.viz.plots import _count, _span

    steps, scale = _count(steps, "steps", 2), _count(scale, "scale")
    x_range, y_range = _span(x_range, "x_range"), _span(y_range, "y_range")
    grid = {n: [round(float(v), 3) for v in np.linspace(lo, hi, steps)]
            for n, (lo, hi) in (("z1", x_range), ("z2", y_range))}

    where = torch.device(device) if device is not None else device_of(decode)

    def frame(**z):
        code = torch.tensor([[z["z1"], z["z2"]]], dtype=torch.float32, device=where)
        return decode(code)[0].cpu()

    return static_interact(frame, mode=mode, scale=scale, **grid)
