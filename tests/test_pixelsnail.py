"""The PixelSNAIL-style prior of VQ-VAE-2 (chapter 9): causality with attention and conditioning."""
import math

import pytest
import torch

import companion
from companion.models import PixelCNN, PixelSNAIL, stack_condition
from companion.models.pixelsnail import CausalSelfAttention, causal_mask
from companion.train import fit


def test_causal_mask():
    m = causal_mask(4)
    assert m.tolist() == [[False, True, True, True], [False, False, True, True],
                          [False, False, False, True], [False, False, False, False]]


def test_attention_matches_multihead_attention_with_the_causal_mask():
    """The attention layer is nn.MultiheadAttention with causal_mask, written out: same
    weights, same numbers, forward and gradients."""
    torch.manual_seed(0)
    layer = CausalSelfAttention(channels=8, heads=2, positions=12)
    with torch.no_grad():
        layer.position.normal_()
        layer.qkv.bias.normal_()
        layer.out.bias.normal_()
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(layer.qkv.weight)
        mha.in_proj_bias.copy_(layer.qkv.bias)
        mha.out_proj.weight.copy_(layer.out.weight)
        mha.out_proj.bias.copy_(layer.out.bias)
    h = torch.randn(3, 8, 3, 4, requires_grad=True)
    ours = layer(h)
    s = layer.norm(h.flatten(2).transpose(1, 2) + layer.position)
    y, _ = mha(s, s, s, attn_mask=causal_mask(12), need_weights=False)
    theirs = h + y.transpose(1, 2).reshape(h.shape)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    g_ours, = torch.autograd.grad(ours.square().sum(), h)
    g_theirs, = torch.autograd.grad(theirs.square().sum(), h)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(channels=6, heads=4, positions=4)


def _assert_causal(prior, k, cond=None, K=10):
    g = torch.Generator().manual_seed(0)
    base = prior.logits(k, cond)
    h, w = k.shape[1:]
    order = [(i, j) for i in range(h) for j in range(w)]
    for t in range(len(order)):
        changed = k.clone()
        for (a, b) in order[t:]:
            changed[:, a, b] = torch.randint(K, (len(k),), generator=g)
        out = prior.logits(changed, cond)
        for (a, b) in order[:t + 1]:
            assert torch.allclose(out[:, :, a, b], base[:, :, a, b], atol=1e-5), (t, a, b)


def test_unconditional_prior_is_causal_through_attention():
    companion.seed_everything(0)
    prior = PixelSNAIL(10, (4, 5), channels=16, blocks=2, heads=2)
    k = torch.randint(10, (2, 4, 5), generator=torch.Generator().manual_seed(1))
    _assert_causal(prior, k)
    # attention reaches far: the last position depends on the first code
    changed = k.clone()
    changed[:, 0, 0] = (k[:, 0, 0] + 1) % 10
    assert not torch.allclose(prior.logits(changed)[:, :, 3, 4], prior.logits(k)[:, :, 3, 4])


def test_conditional_prior_is_causal_and_uses_the_condition():
    companion.seed_everything(0)
    prior = PixelSNAIL(10, (4, 4), channels=16, blocks=2, heads=2, cond_codes=6)
    g = torch.Generator().manual_seed(2)
    k = torch.randint(10, (2, 4, 4), generator=g)
    top = torch.randint(6, (2, 2, 2), generator=g)
    grids = stack_condition(k, top)
    assert grids.shape == (2, 2, 4, 4) and torch.equal(grids[:, 1, ::2, ::2].long(), top)
    cond = grids[:, 1]
    _assert_causal(prior, k, cond)
    other = stack_condition(k, (top + 1) % 6)[:, 1]
    assert not torch.allclose(prior.logits(k, other)[:, :, 0, 0], prior.logits(k, cond)[:, :, 0, 0])
    with pytest.raises(ValueError, match="conditional"):
        prior.logits(k)
    with pytest.raises(ValueError, match="conditioning codes must lie"):
        prior.logits(k, torch.full((2, 4, 4), 6))


def test_prior_learns_and_samples_with_temperature():
    companion.seed_everything(0)
    g = torch.Generator().manual_seed(3)
    first = torch.randint(8, (512, 1, 4), generator=g)
    grids = first.repeat(1, 4, 1).float()[:, None]                   # rows repeat the first row
    prior = PixelSNAIL(8, (4, 4), channels=32, blocks=2, heads=4)
    h = fit(prior, grids, epochs=25, lr=3e-3, batch_size=64, progress=False)
    assert h.train["bits_per_code"][-1] < 0.5 * math.log2(8)
    cold = prior.sample(64, (4, 4), generator=torch.Generator().manual_seed(0), temperature=0.5)
    assert (cold[:, 1:] == cold[:, :1]).float().mean() > 0.9
    with pytest.raises(ValueError, match="temperature"):
        prior.sample(1, (4, 4), temperature=0.0)


def test_unconditional_pixelcnn_rejects_a_condition():
    prior = PixelCNN(4, channels=8, layers=1)
    with pytest.raises(ValueError, match="unconditional"):
        prior.logits(torch.zeros(1, 3, 3, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_codes=0, grid_shape=(2, 2)), "num_codes"), (dict(num_codes=4, grid_shape=(2, 2), channels=10, heads=4), "divisible"),
    (dict(num_codes=4, grid_shape=(2, 2), cond_codes=-1), "cond_codes"),
])
def test_pixelsnail_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelSNAIL(**kwargs)


@pytest.mark.parametrize("conditional", [False, True])
def test_first_rows_have_the_full_grids_logits_and_sampling_uses_them(conditional):
    """Sampling computes row i from rows 0…i only; that must equal the whole grid's logits,
    and the samples must equal a naive sampler's that runs the whole grid at every position."""
    companion.seed_everything(0)
    g = torch.Generator().manual_seed(4)
    if conditional:
        prior, cond = PixelSNAIL(10, (4, 3), channels=16, blocks=2, heads=2, cond_codes=5), torch.randint(5, (3, 4, 3), generator=g)
    else:
        prior, cond = PixelCNN(10, channels=16, layers=2), None
    k = torch.randint(10, (3, 4, 3), generator=g)
    full = prior.logits(k, cond)
    for i in range(4):
        rows = prior.logits(k[:, : i + 1], None if cond is None else cond[:, : i + 1])
        torch.testing.assert_close(rows, full[:, :, : i + 1], atol=1e-5, rtol=1e-5)

    naive = torch.zeros(5, 4, 3, dtype=torch.long)
    gen, c5 = torch.Generator().manual_seed(7), None if cond is None else cond[:1].expand(5, -1, -1)
    with torch.no_grad():
        for i in range(4):
            for j in range(3):
                p = torch.softmax(prior.logits(naive, c5)[:, :, i, j] / 0.8, dim=1)
                naive[:, i, j] = torch.multinomial(p, 1, generator=gen)[:, 0]
    fast = prior.sample(5, (4, 3), generator=torch.Generator().manual_seed(7), temperature=0.8, cond=c5)
    assert torch.equal(fast, naive)
    if conditional:
        with pytest.raises(ValueError, match="first rows"):
            prior.logits(torch.zeros(1, 5, 3, dtype=torch.long), torch.zeros(1, 5, 3, dtype=torch.long))
