"""Exercises of chapter 5 (the contractive autoencoder)."""
from __future__ import annotations

import torch

from companion import losses
from companion.exercises.core import Exercise, register, seeded



def _layer_cases():
    g = seeded(51)
    out = []
    for b, k, d in ((5, 4, 6), (3, 7, 10), (8, 2, 3)):
        w = torch.randn(k, d, generator=g, dtype=torch.float64)
        x = torch.randn(b, d, generator=g, dtype=torch.float64)
        out.append((torch.sigmoid(x @ w.T), w))
    return out


def sigmoid_jacobian_reference(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """J (B, m, d) of the code z = sigmoid(W x + b): ∂z_j/∂x_l = z_j (1 − z_j) W_jl."""
    return (h * (1 - h))[:, :, None] * w[None]


register(Exercise(
    id="cae.sigmoid_jacobian",
    title="the Jacobian of a sigmoid layer, from its activations and weights",
    cases=_layer_cases,
    reference=sigmoid_jacobian_reference,
    hint="the chain rule gives ∂z_j/∂x_l = sigmoid'(w_j·x + b_j) W_jl, and the derivative of the sigmoid "
         "is sigmoid(1 − sigmoid) = z_j(1 − z_j); broadcast (B, m, 1) against (1, m, d).",
    atol=1e-10,
))

register(Exercise(
    id="cae.penalty",
    title="the contractive penalty ‖J_g(x)‖²_F of a sigmoid layer, per example",
    cases=_layer_cases,
    reference=lambda h, w: losses.contractive_penalty(h, w),
    hint="square every entry of the Jacobian and sum over j and l: Σ_j (z_j(1 − z_j))² Σ_l W_jl², "
         "one number per example, shape (B,); no Jacobian needs to be built.",
    atol=1e-10,
))
