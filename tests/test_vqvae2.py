"""VQ-VAE-2 stage 1 (chapter 9): the two-level hierarchical VQ-VAE."""
import pytest
import torch

import companion
from companion.models import VQVAE2, VQVAE2Config
from companion.train import fit, load_checkpoint, save_checkpoint


def _model(**kw):
    companion.seed_everything(0)
    return VQVAE2(VQVAE2Config(channels=(8, 16), num_codes_top=8, num_codes_bottom=16, code_dim=4, **kw))


@pytest.mark.parametrize("codebook,top_weight", [("loss", 0.0), ("ema", 0.0), ("ema+restart", 0.0),
                                                 ("ema+restart", 0.5)])
def test_output_contract_and_shapes(codebook, top_weight):
    m = _model(codebook=codebook, top_weight=top_weight)
    x = torch.rand(3, 1, 32, 32)
    out = m(x)
    assert set(out.terms) == {"recon", "recon_top", "vq_top", "vq_bottom", "commitment_top", "commitment_bottom"}
    assert set(out.stats) == {"perplexity_top", "perplexity_bottom"}
    t = out.terms
    expected = t["recon"] + top_weight * t["recon_top"] + 0.25 * (t["commitment_top"] + t["commitment_bottom"])
    if codebook == "loss":
        expected = expected + t["vq_top"] + t["vq_bottom"]
    assert torch.allclose(out.loss, expected)
    m.eval()
    codes = m.encode(x)
    assert codes.top.shape == (3, 4, 4) and codes.bottom.shape == (3, 8, 8)
    assert torch.allclose(m.decode(codes.top, codes.bottom), m(x).x_hat, atol=1e-6)
    top_only = m.decode(codes.top)                                    # the top level alone …
    bce = torch.nn.functional.binary_cross_entropy(top_only, x, reduction="sum") / len(x)
    assert torch.allclose(m(x).terms["recon_top"], bce, rtol=1e-4)      # … is what recon_top scores
    swapped = m.decode(codes.top[[0]], codes.bottom[[1]])             # top of one image, bottom of another
    assert swapped.shape == (1, 1, 32, 32)


def test_bottom_codes_are_conditioned_on_the_top_codes():
    m = _model(codebook="loss").eval()
    x = torch.rand(16, 1, 32, 32)
    with torch.no_grad():                                             # codes spread where z_bottom lies
        z = m.condition(torch.cat([m.encoder_bottom(x), m.decoder_top(m.quantizer_top(m.encoder_top(
            m.encoder_bottom(x))).z_q)], dim=1)).permute(0, 2, 3, 1).reshape(-1, 4)
        m.quantizer_bottom.codebook.copy_(z[torch.randperm(len(z))[:16]])
    before = m.encode(x)
    with torch.no_grad():
        m.quantizer_top.codebook.mul_(-50.0)                          # different top vectors …
    after = m.encode(x)
    assert not torch.equal(before.bottom, after.bottom)               # … change the bottom choice


def test_gradients_reach_both_encoders():
    m = _model(codebook="ema")
    m(torch.rand(4, 1, 32, 32)).loss.backward()
    for part in (m.encoder_bottom, m.encoder_top, m.decoder_top, m.condition, m.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part


def test_trains_and_reloads(tmp_path):
    companion.seed_everything(0)
    x = (torch.rand(128, 1, 32, 32) > 0.7).float()
    m = _model()
    h = fit(m, x, epochs=3, lr=3e-3, batch_size=32, progress=False)
    assert h.train["recon"][-1] < h.train["recon"][0]
    save_checkpoint(m, tmp_path / "m.safetensors")
    m2 = load_checkpoint(tmp_path / "m.safetensors")
    a, b = m.eval().encode(x[:4]), m2.encode(x[:4])
    assert torch.equal(a.top, b.top) and torch.equal(a.bottom, b.bottom)


@pytest.mark.parametrize("kwargs, field", [
    (dict(image_shape=(1, 28, 28)), "divisible by 8"), (dict(channels=(8,)), "channels"),
    (dict(num_codes_top=0), "num_codes_top"), (dict(decay=1.0), "decay"), (dict(codebook="x"), "codebook"),
    (dict(top_weight=-1.0), "top_weight"),
])
def test_config_rejects(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VQVAE2Config(**kwargs)


def test_decode_rejects_bad_codes():
    m = _model().eval()
    with pytest.raises(ValueError, match="top codes must lie"):
        m.decode(torch.full((1, 4, 4), 8))
    with pytest.raises(ValueError, match="bottom codes must be grids of 8×8"):
        m.decode(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))


def test_level_codes_swap_agreement_and_ancestral_sampling():
    from companion.metrics import level_codes, swap_agreement
    from companion.models import PixelSNAIL, stack_condition
    from companion.train import fit

    m = _model().eval()
    x = torch.rand(12, 1, 32, 32)
    codes = level_codes(m, x, batch_size=5)                           # batched = unbatched
    whole = m.encode(x)
    assert torch.equal(codes.top, whole.top) and torch.equal(codes.bottom, whole.bottom)
    y = torch.arange(12) % 3
    by_top = swap_agreement(m, x, y, lambda imgs: y.numpy())         # a "classifier" that always answers y
    assert by_top["follows_top"] == 1.0
    top = PixelSNAIL(8, (4, 4), channels=8, blocks=2, heads=2)
    bottom = PixelSNAIL(16, (8, 8), channels=8, blocks=2, heads=2, cond_codes=8)
    h_top = fit(top, codes.top[:, None].float(), epochs=1, batch_size=6, progress=False)
    h_bottom = fit(bottom, stack_condition(codes.bottom, codes.top), epochs=1, batch_size=6, progress=False)
    assert bottom.cond_codes == 8 and h_top.epochs == h_bottom.epochs == 1
    top.eval(), bottom.eval()
    g = torch.Generator().manual_seed(0)
    images, drawn = m.sample(top, bottom, 3, generator=g)
    assert images.shape == (3, 1, 32, 32) and drawn.top.shape == (3, 4, 4) and drawn.bottom.shape == (3, 8, 8)
    again, _ = m.sample(top, bottom, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, again)                                  # seeded
    fixed, held = m.sample(top, bottom, 3, top=codes.top[:3], generator=g)
    assert torch.equal(held.top, codes.top[:3])                        # the given top level is kept
    with pytest.raises(ValueError, match="top grids"):
        m.sample(top, bottom, 2, top=codes.top[:3])
