"""The encoder's Jacobian J_f(x) = ∂z/∂x, computed by autograd (``torch.func``), batched."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import jacrev, vmap

from companion.models.base import model_device


def _check_batch_size(batch_size, x=None) -> None:
    if x is not None and (not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0):
        raise ValueError(f"expected a batch (B, ...) with B ≥ 1, got {getattr(x, 'shape', type(x))}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def encoder_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """J_f(x) for every example: (B, ...) → (B, code_size, d) on the CPU, by
    ``vmap(jacrev(encode))`` on the model's device."""
    if not isinstance(model, nn.Module) or not callable(getattr(model, "encode", None)):
        raise TypeError(f"the encoder's Jacobian needs a model with encode(x), got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"expected a batch (B, ...) with B ≥ 1, got {getattr(x, 'shape', type(x))}")

    def f(xi):
        return model.encode(xi.unsqueeze(0)).squeeze(0)

    was_training = model.training
    model.eval()
    try:
        jac = vmap(jacrev(f))(x.to(model_device(model)))   # (B, k, *x.shape[1:])
    finally:
        model.train(was_training)
    return jac.reshape(len(x), jac.shape[1], -1).detach().cpu()


def jacobian_norms(model: nn.Module, x: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """‖J_f(x)‖_F for every example, (B,)."""
    _check_batch_size(batch_size, x)
    return torch.cat([encoder_jacobian(model, x[i:i + batch_size]).flatten(1).norm(dim=1)
                      for i in range(0, len(x), batch_size)])


def jacobian_singular_values(model: nn.Module, x: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """Singular values of J_f(x), descending, for every example: (B, min(k, d))."""
    _check_batch_size(batch_size, x)
    return torch.cat([torch.linalg.svdvals(encoder_jacobian(model, x[i:i + batch_size]))
                      for i in range(0, len(x), batch_size)])
