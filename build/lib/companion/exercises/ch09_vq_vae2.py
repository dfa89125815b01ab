"""Exercises of chapter 9 (VQ-VAE-2)."""
from __future__ import annotations

import torch

from companion.exercises.core import Exercise, register, seeded
from companion.models.pixelsnail import causal_mask


register(Exercise(
    id="vq2.causal_mask",
    title="the attention mask of a causal prior: True where position t may not look at s",
    cases=lambda: [(n,) for n in (1, 2, 5, 16)],
    reference=lambda n: causal_mask(n),
    hint="Row t, column s is True when s > t: the strict upper triangle. torch.ones(n, n, dtype=torch.bool)"
         ".triu(diagonal=1) builds it. diagonal=0 would also hide the position itself, which the "
         "attention layer may see (its input there already depends only on earlier codes).",
))


def _sample_cases():
    g = seeded(91)
    cases = []
    for b, k, t in ((6, 4, 1.0), (50, 10, 0.5), (50, 10, 2.0), (20, 256, 0.1)):
        logits = torch.randn(b, k, generator=g, dtype=torch.float64) * 2
        u = torch.rand(b, generator=g, dtype=torch.float64)
        cases.append((logits, t, u))
    return cases


def _sample_reference(logits, temperature, u):
    cdf = torch.softmax(logits / temperature, dim=1).cumsum(dim=1)
    return (cdf <= u[:, None]).sum(dim=1).clamp(max=logits.shape[1] - 1)


register(Exercise(
    id="vq2.sample_step",
    title="one step of ancestral sampling: a code from logits at a temperature, by inverse CDF",
    cases=_sample_cases,
    reference=_sample_reference,
    hint="Divide the logits by the temperature, take the softmax over the K codes and its cumulative sum "
         "(B, K); the sampled code is the first k whose cumulative probability exceeds u, i.e. the number "
         "of entries ≤ u. torch.multinomial does the same with uniforms of its own.",
))


def _repeat_cases():
    g = seeded(92)
    return [(torch.randint(256, (b, h, w), generator=g), f) for b, h, w, f in ((2, 4, 4, 2), (3, 2, 3, 3), (1, 1, 1, 4))]


register(Exercise(
    id="vq2.repeat_codes",
    title="the top codes repeated to the bottom grid, the condition of p(bottom | top)",
    cases=_repeat_cases,
    reference=lambda top, f: top.repeat_interleave(f, dim=1).repeat_interleave(f, dim=2),
    hint="Each top code covers an f×f block of bottom positions: repeat every row f times "
         "(repeat_interleave along dim 1), then every column (dim 2). Tensor.repeat tiles the whole grid "
         "instead, which puts the codes in the wrong places.",
))
