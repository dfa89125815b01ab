"""β-VAE (chapter 7): the β objective, Burgess et al.'s controlled capacity, and their checks."""
import pytest
import torch

import companion
from companion import losses
from companion.models import VAE, VAEConfig
from companion.train import fit, load_checkpoint, save_checkpoint


def _model(**kw):
    companion.seed_everything(0)
    return VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=3, hidden=(16,), **kw))


def test_beta_weights_only_the_kl():
    x = torch.rand(6, 1, 8, 8)
    outs = {}
    for beta in (0.0, 1.0, 4.0):
        m = _model(beta=beta)
        torch.manual_seed(1)
        outs[beta] = m(x)
    for beta, out in outs.items():
        # same weights and noise: the terms agree, only the weight on the KL differs
        assert torch.allclose(out.terms["kl"], outs[1.0].terms["kl"])
        assert torch.allclose(out.loss, out.terms["recon"] + beta * out.terms["kl"])


def test_lagrangian_bounds_the_negative_beta_loss():
    """F(θ, φ, β) = E log p(x|z) − β (KL − δ) ≥ −L_BETA for β, δ ≥ 0, with equality at δ = 0."""
    x = torch.rand(6, 1, 8, 8)
    m = _model(beta=4.0)
    torch.manual_seed(2)
    out = m(x)
    for delta in (0.0, 0.5, 3.0):
        lagrangian = -out.terms["recon"] - 4.0 * (out.terms["kl"] - delta)
        assert lagrangian >= -out.loss - 1e-6
        assert torch.isclose(lagrangian + out.loss, torch.tensor(4.0 * delta), atol=1e-5)


def test_controlled_capacity_value_and_gradient():
    kl = torch.tensor([3.0, 7.0], requires_grad=True)
    out = losses.controlled_capacity(kl, 5.0, gamma=10.0)
    assert torch.allclose(out, torch.tensor([20.0, 20.0]))
    out.sum().backward()
    assert torch.allclose(kl.grad, torch.tensor([-10.0, 10.0]))     # pulls the KL towards C from both sides
    for bad in (dict(capacity=-1.0, gamma=1.0), dict(capacity=1.0, gamma=-1.0), dict(capacity=float("nan"), gamma=1.0)):
        with pytest.raises(ValueError):
            losses.controlled_capacity(torch.tensor(1.0), **bad)
    with pytest.raises(TypeError):
        losses.controlled_capacity(1.0, 1.0, 1.0)


def test_capacity_schedule_rises_linearly_then_holds():
    m = _model(capacity=10.0, gamma=100.0, capacity_steps=4)
    x = torch.rand(4, 1, 8, 8)
    seen = []
    for _ in range(6):
        out = m(x)
        seen.append(out.stats["capacity"].item())
        assert torch.allclose(out.loss, out.terms["recon"] + 100.0 * (out.terms["kl"] - seen[-1]).abs())
        out.loss.backward()
    assert seen == pytest.approx([0.0, 2.5, 5.0, 7.5, 10.0, 10.0])
    m.eval()                                   # evaluation does not advance the schedule
    m(x)
    assert m.steps.item() == 6


def test_capacity_pulls_the_kl_to_its_target():
    """Trained with a fixed target C, the KL settles near C whatever the data prefer."""
    companion.seed_everything(0)
    x = (torch.rand(512, 1, 8, 8) > 0.5).float()
    for target in (2.0, 6.0):
        m = VAE(VAEConfig(image_shape=(1, 8, 8), latent_size=4, hidden=(32,), capacity=target, gamma=50.0,
                          capacity_steps=1))
        h = fit(m, x, epochs=15, lr=3e-3, batch_size=64, progress=False)
        assert abs(h.train["kl"][-1] - target) < 0.3 * target


def test_capacity_state_survives_a_checkpoint(tmp_path):
    m = _model(capacity=10.0, capacity_steps=100)
    fit(m, torch.rand(64, 1, 8, 8), epochs=1, batch_size=16, progress=False)
    assert m.steps.item() == 4
    save_checkpoint(m, tmp_path / "m.safetensors")
    m2 = load_checkpoint(tmp_path / "m.safetensors")
    assert m2.steps.item() == 4 and m2.current_capacity() == pytest.approx(0.4)


@pytest.mark.parametrize("kwargs, field", [
    (dict(beta=-0.5), "beta"), (dict(capacity=-1.0), "capacity"), (dict(gamma=-1.0), "gamma"),
    (dict(capacity_steps=0), "capacity_steps"), (dict(capacity=float("inf")), "capacity"),
])
def test_config_rejects(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VAEConfig(**kwargs)
