"""Exercises of chapter 4 (the k-sparse autoencoder)."""
from __future__ import annotations

import torch

from companion.exercises.core import Exercise, register, seeded, tensor_problem
from companion.models.ksparse import topk_sparsify



def _topk_cases():
    g = seeded(41)
    return [(torch.randn(b, m, generator=g, dtype=torch.float64).requires_grad_(True), k)
            for b, m, k in ((6, 20, 3), (4, 50, 10), (3, 8, 1), (2, 12, 12))]


def _topk_properties(args, got) -> str | None:
    z, k = args
    expected = topk_sparsify(z.detach(), k)
    if (problem := tensor_problem(got, z.shape)) is not None:
        return problem
    nonzero = (got.detach() != 0).sum(dim=1)
    if not bool((nonzero == k).all()):
        return f"every row should keep exactly k = {k} non-zeros, found {nonzero.tolist()}"
    if not torch.allclose(got.detach(), expected):
        return "the kept values are not the k largest of each row, or they were changed"
    if not got.requires_grad:
        return "your result is not connected to z: the gradient cannot reach the encoder"
    w = torch.randn(z.shape, generator=seeded(7), dtype=z.dtype)
    (grad,) = torch.autograd.grad((got * w).sum(), z)
    want = w * (expected != 0)
    if not torch.allclose(grad, want):
        return "the gradient is wrong: it must equal the upstream gradient on the kept units and 0 elsewhere"
    return None


register(Exercise(
    id="ks.topk",
    title="keep the k largest units of each code, with the right gradient",
    cases=_topk_cases,
    reference=lambda z, k: topk_sparsify(z, k),
    properties=_topk_properties,
    hint="z.topk(k, dim=1).indices gives the positions to keep; build a 0/1 mask with scatter_ "
         "and return z * mask (a mask multiplies the gradient by 1 or 0).",
))


def dead_units_reference(codes: torch.Tensor) -> int:
    return int(((codes != 0).sum(dim=0) == 0).sum().item())


def _dead_cases():
    g = seeded(42)
    out = []
    for n, m, k in ((50, 30, 3), (20, 10, 2), (40, 25, 5)):
        z = torch.randn(n, m, generator=g) * torch.linspace(0.1, 3.0, m)   # some units rarely win
        out.append((topk_sparsify(z, k),))
    out.append((torch.zeros(5, 4),))
    return out


register(Exercise(
    id="ks.dead_units",
    title="count the dead units of a batch of sparse codes",
    cases=_dead_cases,
    reference=dead_units_reference,
    hint="a unit is dead if its column is zero for every example: count the columns of "
         "codes with no non-zero entry; return a Python int.",
))
