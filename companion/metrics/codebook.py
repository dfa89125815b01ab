"""Codebook usage of a vector-quantised model over a whole data set, not a single batch."""
from __future__ import annotations

import torch

from companion.models.base import model_device
from companion.models.vq import perplexity
from companion.runtime import check_seed


def _check(model, x, batch_size: int, kind: str) -> None:
    """A VQVAE (``kind="VQVAE"``) or a VQVAE2, images (N, ...) with N ≥ 1, a positive batch size."""
    from companion.models import VQVAE, VQVAE2

    if not isinstance(model, {"VQVAE": VQVAE, "VQVAE2": VQVAE2}[kind]):
        what = "a vector-quantised model (a VQVAE)" if kind == "VQVAE" else "a two-level VQVAE2"
        raise TypeError(f"this measure needs {what}, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"expected images (N, ...) with N ≥ 1, got {getattr(x, 'shape', type(x).__name__)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


@torch.no_grad()
def code_counts(model, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """How often each of the K codes is chosen over all positions of all images in ``x`` (K,)."""
    _check(model, x, batch_size, "VQVAE")
    was_training = model.training
    model.eval()
    try:
        k = model.config.num_codes
        counts = torch.zeros(k, dtype=torch.long)
        device = model_device(model)
        for i in range(0, len(x), batch_size):
            counts += torch.bincount(model.encode(x[i:i + batch_size].to(device)).flatten().cpu(), minlength=k)
    finally:
        model.train(was_training)
    return counts


def codebook_usage(model, x: torch.Tensor, *, batch_size: int = 1000) -> dict[str, float]:
    """``perplexity`` (exp of the entropy of the code frequencies; K at best) and
    ``used_fraction`` (share of the K codes chosen at least once) over the data ``x``."""
    counts = code_counts(model, x, batch_size=batch_size)
    return {"perplexity": perplexity(counts).item(), "used_fraction": (counts > 0).float().mean().item()}


@torch.no_grad()
def code_grids(model, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """The code grid of every image under a VQ-VAE, (N, h, w) int64, on the CPU (what
    ``model.decode`` takes and a :class:`PixelCNN` prior trains on)."""
    _check(model, x, batch_size, "VQVAE")
    was_training = model.training
    model.eval()
    try:
        device = model_device(model)
        grids = torch.cat([model.encode(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
    return grids


@torch.no_grad()
def level_codes(model, x: torch.Tensor, *, batch_size: int = 1000):
    """Both code grids of every image under a :class:`VQVAE2`, as ``Codes(top, bottom)`` on the CPU."""
    from companion.models.vqvae2 import Codes

    _check(model, x, batch_size, "VQVAE2")
    was_training = model.training
    model.eval()
    try:
        device = model_device(model)
        parts = [model.encode(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return Codes(torch.cat([p.top.cpu() for p in parts]), torch.cat([p.bottom.cpu() for p in parts]))


def swap_agreement(model, x: torch.Tensor, y: torch.Tensor, classify, *, seed: int = 0) -> dict[str, float]:
    """Decode the top codes of each image with the bottom codes of another (a fixed random
    pairing) under a :class:`VQVAE2` and classify the result: the share that takes the top
    image's label, and the bottom image's (``classify(images) -> labels``, e.g. a
    :func:`linear_probe` on pixels)."""
    seed = check_seed(seed)
    import numpy as np

    _check(model, x, 1, "VQVAE2")
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):
        raise ValueError(f"labels y must be a tensor of one label per image ({len(x)},), got "
                         f"{tuple(getattr(y, 'shape', ())) or type(y).__name__}")
    if not callable(classify):
        raise TypeError(f"classify must be a function images → labels, got {type(classify).__name__}")
    codes = level_codes(model, x)
    other = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        device = model_device(model)
        swapped = model.decode(codes.top.to(device), codes.bottom[other].to(device)).cpu()
    labels = np.asarray(classify(swapped))
    return {"follows_top": float((labels == y.numpy()).mean()),
            "follows_bottom": float((labels == y[other].numpy()).mean())}
