"""VQ-VAE (chapter 8): nearest-code lookup, straight-through gradient, EMA codebook, restarts,
the PixelCNN prior's causal mask, and codebook usage."""
import math

import pytest
import torch

import companion
from companion.metrics import code_counts, codebook_usage
from companion.models import VQVAE, PixelCNN, VectorQuantizer, VQVAEConfig, nearest_code
from companion.models.vq import perplexity
from companion.train import fit, load_checkpoint, save_checkpoint


def test_nearest_code_matches_cdist():
    g = torch.Generator().manual_seed(0)
    z, e = torch.randn(500, 8, generator=g), torch.randn(37, 8, generator=g)
    assert torch.equal(nearest_code(z, e), torch.cdist(z, e).argmin(1))
    with pytest.raises(ValueError, match="same D"):
        nearest_code(z, e[:, :4])


def test_straight_through_copies_the_gradient():
    companion.seed_everything(0)
    vq = VectorQuantizer(16, 4)
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    q = vq(z_e)
    # the forward value is the chosen code vector …
    chosen = vq.codebook[q.indices].permute(0, 3, 1, 2)
    assert torch.allclose(q.z_q, chosen, atol=1e-6)      # z_e + (e_k − z_e) rounds in float32
    # … and the gradient at z_q reaches z_e unchanged
    w = torch.randn_like(z_e)
    (q.z_q * w).sum().backward()
    assert torch.equal(z_e.grad, w)
    assert vq.codebook.grad is None                      # the decoder's gradient never reaches e


def test_vq_and_commitment_gradients_go_to_different_places():
    companion.seed_everything(1)
    vq = VectorQuantizer(8, 3)
    z_e = torch.randn(4, 3, 2, 2, requires_grad=True)
    q = vq(z_e)
    g_e, g_z = torch.autograd.grad(q.vq, (vq.codebook, z_e), allow_unused=True)
    assert g_z is None and g_e.abs().sum() > 0           # VQ loss: codebook only
    g_e, g_z = torch.autograd.grad(q.commitment, (vq.codebook, z_e), allow_unused=True)
    assert g_e is None and g_z.abs().sum() > 0           # commitment: encoder only
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    manual = (flat - vq.codebook.detach()[q.indices.flatten()]).pow(2).sum() / 4
    assert torch.allclose(q.vq, manual) and torch.allclose(q.commitment, manual)


def test_one_ema_step_by_hand():
    vq = VectorQuantizer(2, 2, ema=True, decay=0.9, eps=1e-5)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    vq.ema_sum.copy_(vq.codebook)
    vq.ema_count.fill_(1.0)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])            # two vectors to code 0, one to code 1
    vq.train()
    vq(z.T.reshape(1, 2, 1, 3).contiguous().requires_grad_())
    n = torch.tensor([2.0, 1.0])
    N = 0.9 * 1.0 + 0.1 * n                                          # N_i = γ N_i + (1 − γ) n_i
    m = 0.9 * torch.tensor([[0.0, 0.0], [10.0, 10.0]]) + 0.1 * torch.tensor([[1.0, 1.0], [9.0, 9.0]])
    assert torch.allclose(vq.ema_count, N) and torch.allclose(vq.ema_sum, m)
    smoothed = (N + 1e-5) / (N.sum() + 2e-5) * N.sum()               # Laplace smoothing
    assert torch.allclose(vq.codebook, m / smoothed[:, None])
    assert torch.allclose(vq.codebook, m / N[:, None], rtol=1e-4)   # e_i = m_i / N_i up to ε
    vq.eval()                                                        # evaluation does not update
    before = vq.codebook.clone()
    vq(z.T.reshape(1, 2, 1, 3).contiguous())
    assert torch.equal(vq.codebook, before)


def test_dead_codes_are_restarted_from_encoder_outputs():
    companion.seed_everything(0)
    vq = VectorQuantizer(8, 2, ema=True, restart_dead=True)
    vq.train()
    z = torch.randn(1, 2, 4, 8) * 0.01 + 5.0                         # far from every initial code
    for _ in range(60):
        q = vq(z)
    assert vq.restarts.item() > 0
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    dist = torch.cdist(vq.codebook, flat).min(1).values
    assert (dist < 0.5).float().mean() > 0.5                         # most codes now sit among the data
    assert perplexity(torch.bincount(q.indices.flatten(), minlength=8)) > 2


def test_perplexity_extremes():
    assert perplexity(torch.tensor([5, 5, 5, 5])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([9, 0, 0, 0])).item() == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_codes=0, code_dim=4), "num_codes"),
    (dict(num_codes=4, code_dim=0), "code_dim"),
    (dict(num_codes=4, code_dim=2, decay=1.0), r"\(0, 1\)"),
    (dict(num_codes=4, code_dim=2, decay=0.0), r"\(0, 1\)"),
])
def test_quantizer_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VectorQuantizer(**kwargs)


def test_code_dim_mismatch_is_named():
    vq = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match="D=3"):
        vq(torch.randn(2, 5, 2, 2))


@pytest.mark.parametrize("kwargs, field", [
    (dict(num_codes=0), "num_codes"), (dict(code_dim=-1), "code_dim"), (dict(decay=1.5), "decay"),
    (dict(codebook="kmeans"), "codebook"), (dict(beta=-1.0), "beta"), (dict(image_shape=(1, 30, 30)), "divisible"),
])
def test_vqvae_config_rejects(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VQVAEConfig(**kwargs)


@pytest.mark.parametrize("codebook", ["loss", "ema", "ema+restart"])
def test_vqvae_output_contract(codebook):
    companion.seed_everything(0)
    m = VQVAE(VQVAEConfig(num_codes=16, code_dim=4, channels=(8, 8), codebook=codebook))
    x = torch.rand(3, 1, 28, 28)
    out = m(x)
    assert set(out.terms) == {"recon", "vq", "commitment"} and set(out.stats) == {"perplexity"}
    assert out.z.shape == (3, 7, 7) and out.x_hat.shape == x.shape
    expected = out.terms["recon"] + 0.25 * out.terms["commitment"] + (out.terms["vq"] if codebook == "loss" else 0)
    assert torch.allclose(out.loss, expected)
    m.eval()
    assert torch.allclose(m.decode(m.encode(x)), m(x).x_hat)
    with pytest.raises(ValueError, match="code indices"):
        m.decode(torch.full((1, 7, 7), 16))


def test_vqvae_trains_and_reloads(tmp_path):
    companion.seed_everything(0)
    x = (torch.rand(256, 1, 28, 28) > 0.7).float()
    m = VQVAE(VQVAEConfig(num_codes=16, code_dim=4, channels=(8, 8)))
    h = fit(m, x, epochs=3, lr=3e-3, batch_size=64, progress=False,
            on_epoch_end=lambda epoch, model: codebook_usage(model, x))
    assert h.train["recon"][-1] < h.train["recon"][0]
    assert len(h.tracked["perplexity"]) == 3 and 0 < h.tracked["used_fraction"][-1] <= 1
    save_checkpoint(m, tmp_path / "vq.safetensors")
    m2 = load_checkpoint(tmp_path / "vq.safetensors")
    assert torch.equal(m2.encode(x[:8]), m.eval().encode(x[:8]))
    assert code_counts(m, x).sum() == 256 * 49


def test_pixelcnn_is_causal():
    """The logits at a position never depend on the codes at that position or after it."""
    companion.seed_everything(0)
    prior = PixelCNN(num_codes=10, channels=16, layers=3)
    g = torch.Generator().manual_seed(0)
    k = torch.randint(10, (2, 5, 6), generator=g)
    base = prior.logits(k)
    order = [(i, j) for i in range(5) for j in range(6)]
    for t, (i, j) in enumerate(order):
        changed = k.clone()
        for (a, b) in order[t:]:
            changed[:, a, b] = torch.randint(10, (2,), generator=g)
        out = prior.logits(changed)
        for (a, b) in order[:t + 1]:
            assert torch.allclose(out[:, :, a, b], base[:, :, a, b], atol=1e-6), (i, j, a, b)
    # and it does use the past: changing the first code moves the logits right after it
    changed = k.clone()
    changed[:, 0, 0] = (k[:, 0, 0] + 1) % 10
    assert not torch.allclose(prior.logits(changed)[:, :, 0, 1], base[:, :, 0, 1])


def test_pixelcnn_learns_a_predictable_grid_and_samples():
    companion.seed_everything(0)
    # grids whose rows repeat the first row: half of the positions are predictable
    g = torch.Generator().manual_seed(1)
    first = torch.randint(8, (512, 1, 4), generator=g)
    grids = first.repeat(1, 4, 1).float()[:, None]
    prior = PixelCNN(num_codes=8, channels=32, layers=3)
    h = fit(prior, grids, epochs=30, lr=3e-3, batch_size=64, progress=False)
    assert h.train["bits_per_code"][-1] < 0.5 * math.log2(8)
    s = prior.sample(4, (4, 4), generator=torch.Generator().manual_seed(0))
    assert s.shape == (4, 4, 4) and s.min() >= 0 and s.max() < 8
    assert (s[:, 1:] == s[:, :1]).float().mean() > 0.8               # samples repeat their first row
    with pytest.raises(ValueError, match="0…7"):
        prior(torch.full((1, 1, 4, 4), 8.0))



def test_the_codebook_gradient_repeats_bit_for_bit():
    """The loss-learned codebook's gradient is summed in a fixed order (index_select, not
    advanced indexing, whose CPU backward accumulates in a thread-dependent order): the same
    batch gives the same gradient every time, so a seed repeats a VQ-VAE's training exactly."""
    q = VectorQuantizer(64, 16)
    z = torch.randn(128, 16, 7, 7, generator=torch.Generator().manual_seed(0))
    grads = set()
    for _ in range(10):
        q.zero_grad()
        out = q(z.clone().requires_grad_())
        (out.vq + (out.z_q ** 2).sum()).backward()
        grads.add(q.codebook.grad.numpy().tobytes())
    assert len(grads) == 1
