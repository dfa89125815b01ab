"""Held-out reconstruction error and codes, batched under ``no_grad``."""
from __future__ import annotations

import torch
from torch import nn

from companion.losses import finite_range
from companion.models.base import EncoderDecoder, model_device
from companion.runtime import check_seed


def _batches(x: torch.Tensor, batch_size: int):
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"expected a tensor of shape (N, ...) with N ≥ 1, got {getattr(x, 'shape', type(x))}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size]


def _check_model(model, what: str) -> None:
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"{what} needs a model with an encoder and a decoder (an EncoderDecoder), "
                        f"got {type(model).__name__}")


@torch.no_grad()
def reconstruction_error(model: nn.Module, x: torch.Tensor, *, target: torch.Tensor | None = None,
                         batch_size: int = 1000) -> float:
    """Mean over examples of the squared error ‖target − x'‖² summed over dimensions.

    x' = ``model.reconstruct(x)`` is the model's reconstruction in data space (the decoder's
    mean for a probabilistic model), whatever loss it was trained with, so models are compared
    on one scale. ``target``
    defaults to x; for a denoising model pass corrupted inputs as x and the clean images as
    ``target``. Divide by the number of dimensions for a per-pixel MSE.
    """
    _check_model(model, "reconstruction_error")
    target = x if target is None else target
    for what, t in (("x", x), ("target", target)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"reconstruction_error: {what} must be a floating-point torch.Tensor (N, ...), got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    finite_range(target, "reconstruction_error: target")
    if target.shape != x.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match input shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    device = model_device(model)
    total = 0.0
    try:
        for i, xb in enumerate(_batches(x, batch_size)):
            xb = xb.to(device)
            tb = target[i * batch_size:(i + 1) * batch_size].to(device)
            x_hat = model.reconstruct(xb).reshape(xb.shape)
            total += ((x_hat - tb) ** 2).flatten(1).sum(1).sum().item()
    finally:
        model.train(was_training)
    return total / len(x)


@torch.no_grad()
def encode_all(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Codes of every example, (N, k), on the CPU: ``model.code(x)`` (for a distribution-valued
    encoder, its mean). Batches go to the model's device."""
    _check_model(model, "encode_all")
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        codes = []
        for xb in _batches(x, batch_size):
            z = model.code(xb.to(device))
            if not isinstance(z, torch.Tensor):
                raise TypeError(f"encode_all stacks code tensors; {type(model).__name__}'s codes are "
                                f"{type(z).__name__} (for a VQVAE2 use companion.metrics.level_codes)")
            codes.append(z.cpu())
    finally:
        model.train(was_training)
    return torch.cat(codes)


def corruption_curve(models: dict, x_test: torch.Tensor, levels, *, kind: str = "masking",
                     seed: int = 0) -> dict[str, list[float]]:
    """Held-out squared error per image against the *clean* digits, for inputs corrupted at
    each level: for each model (its reconstruction of x̃) and for x̃ itself (``"input"``).

    The same corrupted copies (fixed by ``seed``) are given to every model.
    """
    seed = check_seed(seed)
    from companion.data.corrupt import corrupt

    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict name → model, got {models!r}")
    out = {"input": [], **{name: [] for name in models}}
    for i, level in enumerate(levels):
        x_tilde = corrupt(x_test, kind, level, generator=torch.Generator().manual_seed(seed + i))
        out["input"].append(((x_tilde - x_test) ** 2).flatten(1).sum(1).mean().item())
        for name, model in models.items():
            out[name].append(reconstruction_error(model, x_tilde, target=x_test))
    return out


@torch.no_grad()
def perturbation_gain(model: nn.Module, x: torch.Tensor, *, eps: float = 0.05, seed: int = 0) -> float:
    """How much of a small random perturbation an autoencoder passes on: the mean over ``x`` of
    ‖r(x + δ) − r(x)‖ / ‖δ‖ for r = f_θ ∘ g_φ and δ a random direction of length ``eps``
    (one per example, drawn with ``seed``). The identity map, a perfect copier, scores 1; an
    orthogonal projection onto a fraction f of the d input directions scores about √f."""
    seed = check_seed(seed)
    if not callable(getattr(model, "encode", None)) or not callable(getattr(model, "decode", None)):
        raise TypeError(f"perturbation_gain needs an autoencoder with encode and decode, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"expected a float batch (B, ...) with B ≥ 1, got {getattr(x, 'shape', type(x).__name__)}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps must be a number > 0, got {eps!r}")
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        d = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
        d = eps * d / d.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
        x = x.to(device)
        r0, r1 = model.decode(model.encode(x)), model.decode(model.encode(x + d.to(device)))
    finally:
        model.train(was_training)
    return ((r1 - r0).flatten(1).norm(dim=1) / eps).mean().item()
