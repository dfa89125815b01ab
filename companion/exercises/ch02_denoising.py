"""Exercises of chapter 2 (the denoising autoencoder)."""
from __future__ import annotations

import torch

from companion.data.corrupt import masking_noise
from companion.exercises.core import Exercise, register, seeded, tensor_problem



# --- dae.masking_noise: a random function, checked by its properties -------------------

def _masking_cases():
    g = seeded(21)
    # strictly positive inputs, so that every masked entry is visible as a 0
    return [(0.1 + torch.rand(b, *shape, generator=g), p)
            for b, shape, p in ((64, (1, 10, 10), 0.3), (32, (50,), 0.5), (16, (2, 5, 5), 0.0),
                                (16, (3, 4, 4), 1.0), (128, (20,), 0.25))]


def _masking_properties(args, got) -> str | None:
    x, p = args
    if (problem := tensor_problem(got, x.shape)) is not None:
        return problem
    kept = got == x
    zeroed = got == 0
    if not bool((kept | zeroed).all()):
        return "some entries were changed to values other than 0: masking only forces entries to 0"
    d = x[0].numel()
    counts = zeroed.flatten(1).sum(1)
    if (counts != int(round(p * d))).any():                   # exactly round(p·d), every example
        return (f"each example should have exactly round(ν·d) = {round(p * d)} entries masked, "
                f"but the counts range from {int(counts.min())} to {int(counts.max())}")
    if 0 < p < 1 and len(x) > 1:
        masks = zeroed.flatten(1)
        if bool((masks == masks[0]).all()):
            return "every example has the same mask: draw the masked positions independently per example"
    return None


register(Exercise(
    id="dae.masking_noise",
    title="masking noise: a fixed proportion of each example's entries forced to 0",
    cases=_masking_cases,
    reference=lambda x, p: masking_noise(x, p),
    properties=_masking_properties,
    hint="draw a random score per entry (torch.rand of shape (B, d)), take the round(ν·d) "
         "largest per row (topk) and set those positions to 0; every example gets its own mask.",
))


# --- dae.expected_masking_error: the error of doing nothing --------------------------

def expected_masking_error_reference(x: torch.Tensor, p: float) -> torch.Tensor:
    """E‖x̃ − x‖² per example when each entry is masked independently with probability ν = ``p``."""
    return p * (x ** 2).flatten(1).sum(1)


def _error_cases():
    g = seeded(22)
    return [(torch.rand(b, *shape, generator=g), p) for b, shape, p in ((5, (1, 4, 4), 0.3), (3, (7,), 0.8))]


register(Exercise(
    id="dae.expected_masking_error",
    title="expected squared error between x and its masked copy",
    cases=_error_cases,
    reference=expected_masking_error_reference,
    hint="a masked entry contributes x_j², a kept one 0; each entry is masked with probability "
         "ν, so by linearity of expectation the answer is ν Σ_j x_j², one number per example.",
))
