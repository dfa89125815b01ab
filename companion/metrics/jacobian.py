"""The encoder's Jacobian J_f(x) = ∂z/∂x, computed by autograd (``torch.func``), batched."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import jacrev, vmap

from companion.models.base import EncoderDecoder, model_device


def _check_batch_size(batch_size, x=None) -> None:
    if x is not None and (not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0):
        raise ValueError(f"expected a batch (B, ...) with B ≥ 1, got {getattr(x, 'shape', type(x))}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def encoder_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """J(x) = ∂ code(x) / ∂x for every example: (B, ...) → (B, code size, d) on the CPU, by
    ``vmap(jacrev(model.code))`` on the model's device. Defined for every model whose code is
    continuous (an autoencoder's z, PCA's, a VAE's posterior mean, a TD-VAE's belief means,
    flattened); a vector-quantised model's codes are indices, so it is refused."""
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"the encoder's Jacobian needs a model with an encoder (an EncoderDecoder), "
                        f"got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"expected a batch (B, ...) with B ≥ 1, got {getattr(x, 'shape', type(x))}")
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probe = model.code(x[:1].to(device))
        if not isinstance(probe, torch.Tensor) or not probe.is_floating_point():
            raise TypeError(f"the encoder's Jacobian needs continuous codes; {type(model).__name__}'s codes are "
                            f"{'indices' if isinstance(probe, torch.Tensor) else type(probe).__name__}")
        jac = vmap(jacrev(lambda xi: model.code(xi.unsqueeze(0)).squeeze(0)))(x.to(device))   # (B, *code, *x)
    finally:
        model.train(was_training)
    return jac.reshape(len(x), probe[0].numel(), -1).detach().cpu()


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
