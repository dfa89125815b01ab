"""The denoising and sparse autoencoders (chapters 2 and 3)."""
import pytest
import torch

import companion
from companion import Output, losses
from companion.models import (DenoisingAutoencoder, DenoisingAutoencoderConfig, SparseAutoencoder,
                              SparseAutoencoderConfig)
from companion.train import fit, load_checkpoint, save_checkpoint


def _x(n=16, shape=(1, 8, 8)):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


def test_dae_corrupts_in_training_only_and_scores_against_clean():
    companion.seed_everything(0)
    m = DenoisingAutoencoder(image_shape=(1, 8, 8), code_size=3, hidden=(16,), noise="masking", noise_level=0.5)
    x = _x()
    seen = []
    m.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    m.train()
    out = m(x)
    assert isinstance(out, Output)
    assert ((seen[-1] == 0).flatten(1).sum(1) == 32).all()          # half of 64 inputs masked
    x_hat = m.decode(m.encode(seen[-1]))
    assert torch.allclose(out.loss, losses.mse(x_hat, x), atol=1e-6)  # target is the clean x
    m.eval()
    m(x)
    assert torch.equal(seen[-1], x)                                  # no noise in eval mode


def test_dae_config_validation():
    with pytest.raises(ValueError, match="noise_level"):
        DenoisingAutoencoderConfig(noise_level=1.5)
    with pytest.raises(ValueError, match="noise_level"):
        DenoisingAutoencoderConfig(noise="gaussian", noise_level=-0.1)
    assert DenoisingAutoencoderConfig(noise="gaussian", noise_level=1.5).noise_level == 1.5
    with pytest.raises(ValueError, match="noise"):
        DenoisingAutoencoderConfig(noise="blur")
    with pytest.raises(TypeError):
        DenoisingAutoencoder(companion.models.AutoencoderConfig())


def test_kl_bernoulli_matches_torch_distributions_and_is_zero_at_rho():
    rho_hat = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    ours = losses.kl_bernoulli(0.2, rho_hat)
    ref = torch.distributions.kl_divergence(torch.distributions.Bernoulli(probs=torch.full_like(rho_hat, 0.2)),
                                            torch.distributions.Bernoulli(probs=rho_hat))
    assert torch.allclose(ours, ref, atol=1e-12)
    assert losses.kl_bernoulli(0.2, torch.tensor([0.2], dtype=torch.float64)).abs().item() < 1e-12
    assert torch.isfinite(losses.kl_bernoulli(0.05, torch.tensor([0.0, 1.0]))).all()


def test_kl_bernoulli_gradient_closed_form_and_autograd():
    rho, beta = 0.05, 3.0
    rho_hat = (torch.rand(100, dtype=torch.float64) * 0.98 + 0.01).requires_grad_(True)
    (beta * losses.kl_bernoulli(rho, rho_hat).sum()).backward()
    closed = beta * (-rho / rho_hat.detach() + (1 - rho) / (1 - rho_hat.detach()))
    assert (rho_hat.grad - closed).abs().max() < 1e-6
    # and against finite differences
    f = lambda r: beta * losses.kl_bernoulli(rho, r).sum()
    r0, h = rho_hat.detach().clone(), 1e-6
    e = torch.zeros_like(r0)
    e[7] = h
    fd = (f(r0 + e) - f(r0 - e)) / (2 * h)
    assert abs(fd.item() - closed[7].item()) < 1e-5


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.5, 1.5])
def test_kl_bernoulli_rejects_rho_outside_the_open_interval(rho):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        losses.kl_bernoulli(rho, torch.tensor([0.5]))


def test_kl_bernoulli_rejects_rho_hat_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.kl_bernoulli(0.1, torch.tensor([1.2]))


def test_sparse_penalty_sums_over_every_sigmoid_layer():
    companion.seed_everything(0)
    cfg = SparseAutoencoderConfig(image_shape=(1, 8, 8), hidden=(12,), code_size=6, rho=0.1, beta=2.0)
    m = SparseAutoencoder(cfg)
    x = _x()
    acts = m.hidden_activations(x)
    assert [a.shape for a in acts] == [(16, 12), (16, 6)]
    out = m(x)
    expected = sum(losses.kl_bernoulli(0.1, a.mean(0)).sum() for a in acts)
    assert torch.allclose(out.terms["sparsity"], expected)
    assert torch.allclose(out.loss, out.terms["recon"] + 2.0 * expected)
    assert torch.equal(out.z, acts[-1]) and 0 < out.z.min() and out.z.max() < 1


def test_sparse_training_pulls_mean_activation_down():
    companion.seed_everything(0)
    x = torch.sigmoid(torch.randn(256, 3) @ torch.randn(3, 64) * 2).reshape(256, 1, 8, 8)
    m = SparseAutoencoder(SparseAutoencoderConfig(image_shape=(1, 8, 8), code_size=32, rho=0.05, beta=3.0))
    before = m.mean_activations(x)[0].mean().item()
    fit(m, x, epochs=40, lr=1e-2, batch_size=64, progress=False)
    after = m.mean_activations(x)[0].mean().item()
    assert before > 0.3 and after < 0.15


@pytest.mark.parametrize("kwargs,field", [
    (dict(rho=0.0), "rho"), (dict(rho=1.2), "rho"), (dict(beta=-1.0), "beta"), (dict(beta=float("nan")), "beta"),
    (dict(act="relu"), "sigmoid"), (dict(architecture="conv", hidden=(8,)), "architecture"),
])
def test_sparse_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SparseAutoencoderConfig(**kwargs)


def test_regularised_models_checkpoint_round_trip(tmp_path):
    for model in (DenoisingAutoencoder(image_shape=(1, 8, 8), code_size=3, hidden=(8,)),
                  SparseAutoencoder(image_shape=(1, 8, 8), code_size=5)):
        path = save_checkpoint(model, tmp_path / f"{type(model).__name__}.safetensors")
        loaded = load_checkpoint(path)
        assert type(loaded) is type(model) and loaded.config == model.config
        x = _x(4)
        assert torch.equal(loaded.eval().encode(x), model.eval().encode(x))
