r"""The importance-weighted estimate of log p(x) (Burda et al., 2016).

    log p(x) ≥ L_k = E[ log (1/k) Σ_i p(x, z_i) / q(z_i|x) ],   z_i ∼ q(z|x),

L_1 is the ELBO, L_k is non-decreasing in k and tends to log p(x). Computed with
``logsumexp`` for stability, in chunks of samples so memory stays bounded.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from companion.models.base import model_device
from companion.runtime import drawing_from, plain


@torch.no_grad()
def importance_weighted_log_likelihood(model: nn.Module, x: torch.Tensor, *, k: int = 1000,
                                       chunk: int = 100, batch_size: int = 100,
                                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-example L_k (nats), shape (N,) on the CPU, for a model with ``encode`` → q(z|x),
    ``decode`` → p(x|z) and ``prior()`` → p(z) (a :class:`companion.models.VAE`). Batches go
    to the model's device. The samples z_i come from ``generator`` when one is given (it is
    advanced; PyTorch's global generator is left untouched), else from the global generator."""
    missing = [m for m in ("encode", "decode", "prior") if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(f"the importance-weighted estimate needs a probabilistic model with encode → q(z|x), "
                        f"decode → p(x|z) and prior() (a VAE); {type(model).__name__} has no "
                        f"{', '.join(missing)}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"expected data (N, ...) with N ≥ 1, got {getattr(x, 'shape', type(x).__name__)}")
    for name, v in (("k", k), ("chunk", chunk), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(plain(v), int) or plain(v) < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    k, chunk, batch_size = int(plain(k)), int(plain(chunk)), int(plain(batch_size))
    was_training = model.training
    model.eval()
    device = model_device(model)
    out = []
    try:
        with drawing_from(generator, device):
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size].to(device)
                q = model.encode(xb)
                log_w = []
                for j in range(0, k, chunk):
                    s = min(chunk, k - j)
                    z = q.sample((s,))                                          # (s, B, latent)
                    b = len(xb)
                    flat = z.reshape(s * b, -1)
                    log_px = model.decode(flat).log_prob(xb.repeat(s, *([1] * (xb.dim() - 1)))).view(s, b)
                    log_pz = model.prior(1).log_prob(flat).view(s, b)
                    log_q = q.log_prob(z)                                       # (s, B)
                    log_w.append(log_px + log_pz - log_q)
                log_w = torch.cat(log_w)                                        # (k, B)
                out.append((torch.logsumexp(log_w, dim=0) - math.log(k)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
