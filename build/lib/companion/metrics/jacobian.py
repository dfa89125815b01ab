"""The encoder's Jacobian J_f(x) = ∂z/∂x, computed by autograd (``torch.func``), batched."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import jacrev, vmap

from companion.models.base import model_device


def encoder_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """J_f(x) for every example: (B, ...) → (B, code_size, d) on the CPU, by
    ``vmap(jacrev(encode))`` on the model's device."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"expected a batch (B, ...), got {getattr(x, 'shape', type(x))}")

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
    return torch.cat([encoder_jacobian(model, x[i:i + batch_size]).flatten(1).norm(dim=1)
                      for i in range(0, len(x), batch_size)])


def jacobian_singular_values(model: nn.Module, x: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """Singular values of J_f(x), descending, for every example: (B, min(k, d))."""
    return torch.cat([torch.linalg.svdvals(encoder_jacobian(model, x[i:i + batch_size]))
                      for i in range(0, len(x), batch_size)])
