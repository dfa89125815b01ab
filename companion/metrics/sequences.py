"""Measurements of sequence models (TD-VAE): jumpy prediction errors and belief probes."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from companion.models.base import model_device
from companion.runtime import check_seed


@torch.no_grad()
def jumpy_errors(model, frames: torch.Tensor, t1: int, jumps: Sequence[int], *, mean_frame: torch.Tensor,
                 samples: int = 8, seed: int = 0) -> dict[str, list[float]]:
    """Squared error per frame (summed over pixels, averaged over sequences) of predicting
    frame t1 + δ from frames 0 … t1, for each δ in ``jumps``: the model (one jump of δ,
    ``model.predict``, averaged over ``samples`` states), copying frame t1, and the per-pixel
    ``mean_frame``."""
    seed = check_seed(seed)
    if not isinstance(frames, torch.Tensor) or frames.dim() < 3:
        raise ValueError(f"frames must be sequences (N, T, ...), got {getattr(frames, 'shape', frames)!r}")
    if not jumps or min(jumps) < 1:
        raise ValueError(f"jumps must be positive step counts, got {list(jumps)!r}")
    if t1 < 0 or t1 + max(jumps) >= frames.shape[1]:
        raise ValueError(f"t1 + δ must be inside the sequences ({frames.shape[1]} steps), got t1 = {t1}, "
                         f"δ up to {max(jumps)}")
    g = torch.Generator().manual_seed(seed)
    err = lambda a, b: (a - b).pow(2).flatten(1).sum(1).mean().item()   # noqa: E731
    out: dict[str, list[float]] = {"tdvae": [], "copy_last": [], "mean_frame": []}
    for d in jumps:
        truth = frames[:, t1 + d]
        predicted = model.predict(frames.to(model_device(model)), t1, d, samples=samples, generator=g).cpu()
        out["tdvae"].append(err(predicted, truth))
        out["copy_last"].append(err(frames[:, t1], truth))
        out["mean_frame"].append(err(mean_frame.expand_as(truth), truth))
    return out


@torch.no_grad()
def belief_probe(model, train, test, targets, *, skip: int = 2) -> dict[str, float]:
    """R² of linear maps from the belief states h_t (b_t in the paper; t ≥ ``skip``, ``model.beliefs``) to true
    state variables, fitted on ``train`` and scored on ``test`` (both :class:`Sequences`).
    ``targets`` maps a name to a function ``Sequences -> (N, T[, k])`` tensor."""
    from companion.data.sequences import Sequences
    from companion.metrics.probes import linear_probe_r2

    if not (isinstance(train, Sequences) and isinstance(test, Sequences)):
        raise TypeError(f"train and test must be Sequences (with a frames tensor), got "
                        f"{type(train).__name__} and {type(test).__name__}")
    if not isinstance(targets, dict) or not all(callable(f) for f in targets.values()):
        raise TypeError("targets must map names to functions Sequences → (N, T[, k]) tensors")
    device = model_device(model)
    b_train, b_test = (model.beliefs(s.frames.to(device))[:, skip:].cpu() for s in (train, test))
    flat = lambda b: b.reshape(-1, b.shape[-1])   # noqa: E731
    scores = {}
    for name, f in targets.items():
        y_train, y_test = f(train)[:, skip:], f(test)[:, skip:]
        k = y_train.shape[2] if y_train.dim() == 3 else 1
        scores[name] = linear_probe_r2(flat(b_train), y_train.reshape(-1, k), flat(b_test),
                                       y_test.reshape(-1, k)).mean().item()
    return scores
