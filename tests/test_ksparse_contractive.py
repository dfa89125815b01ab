"""The k-sparse and contractive autoencoders (chapters 4 and 5)."""
import pytest
import torch

import companion
from companion import losses
from companion.metrics import dead_units
from companion.metrics import encoder_jacobian, jacobian_norms, jacobian_singular_values
from companion.models import (ContractiveAutoencoder, ContractiveAutoencoderConfig, KSparseAutoencoder,
                              KSparseAutoencoderConfig, topk_sparsify)
from companion.train import fit


def _x(n=32, shape=(1, 8, 8)):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


def test_topk_keeps_exactly_k_largest_and_gradient_only_there():
    z = torch.randn(16, 40, dtype=torch.float64, requires_grad=True)
    out = topk_sparsify(z, 5)
    kept = out != 0
    assert (kept.sum(1) == 5).all()
    assert torch.equal(out[kept], z[kept])
    # the kept entries are the 5 largest of each row
    assert (z.detach()[kept].view(16, 5).min(1).values >= z.detach().masked_fill(kept, -1e9).max(1).values).all()
    w = torch.randn(16, 40, dtype=torch.float64)
    (out * w).sum().backward()
    assert torch.equal(z.grad, w * kept)


@pytest.mark.parametrize("k", [0, 41, 2.5, True])
def test_topk_validates_k(k):
    with pytest.raises(ValueError, match="k must be"):
        topk_sparsify(torch.randn(2, 40), k)


def test_ksparse_model_codes_and_encoder_gradient():
    companion.seed_everything(0)
    m = KSparseAutoencoder(KSparseAutoencoderConfig(image_shape=(1, 8, 8), code_size=30, k=4)).init_from_data(_x())
    out = m(_x(5))                                           # 5 × 4 selections < 30 units: some unused
    assert ((out.z != 0).sum(1) == 4).all()
    out.loss.backward()
    unused = (out.z != 0).sum(0) == 0
    assert unused.any()
    assert (m.encoder[1].weight.grad[unused] == 0).all()
    assert (m.encoder[1].bias.grad[unused] == 0).all()


def test_ksparse_annealing_schedule():
    m = KSparseAutoencoder(KSparseAutoencoderConfig(image_shape=(1, 8, 8), code_size=30, k=4, k_start=20,
                                                    anneal_steps=10))
    assert m.current_k == 20
    fit(m, _x(40), epochs=2, batch_size=8, progress=False)   # 10 steps
    assert m.steps.item() == 10 and m.current_k == 4
    m.eval()
    m(_x(4))
    assert m.steps.item() == 10                              # eval does not advance the schedule


@pytest.mark.parametrize("kwargs,field", [
    (dict(k=0), "k must"), (dict(k=501), "k must"), (dict(k=10, k_start=5), "k_start"),
    (dict(anneal_steps=-1), "anneal_steps"), (dict(code_act="sigmoid"), "code_act"),
])
def test_ksparse_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        KSparseAutoencoderConfig(**kwargs)


def test_init_from_data_centres_units():
    x = _x(64)
    m = KSparseAutoencoder(KSparseAutoencoderConfig(image_shape=(1, 8, 8), code_size=20, k=3)).init_from_data(x)
    z = m.encode_dense(x)
    assert z.mean(0).abs().max() < 1e-5          # every unit centred on the data mean
    assert torch.allclose(m.decoder[0][1].weight, m.encoder[1].weight.T)


def test_dead_units():
    codes = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert dead_units(codes) == 1


def test_contractive_closed_form_matches_jacrev():
    companion.seed_everything(0)
    m = ContractiveAutoencoder(ContractiveAutoencoderConfig(image_shape=(1, 8, 8), code_size=16)).double()
    x = _x(10).double()
    jac = encoder_jacobian(m, x)
    assert jac.shape == (10, 16, 64)
    h = m.encode(x)
    closed = losses.contractive_penalty(h, m.encoder_weight)
    assert torch.allclose((jac ** 2).sum((1, 2)), closed, atol=1e-5)
    assert torch.allclose(jacobian_norms(m, x, batch_size=3) ** 2, closed, atol=1e-5)
    assert torch.allclose(jacobian_singular_values(m, x).pow(2).sum(1), closed, atol=1e-5)


def test_contractive_loss_terms_and_effect():
    companion.seed_everything(0)
    x = torch.sigmoid(torch.randn(128, 3) @ torch.randn(3, 64) * 2).reshape(128, 1, 8, 8)
    norms = {}
    for lam in (0.0, 1.0):
        companion.seed_everything(0)
        m = ContractiveAutoencoder(ContractiveAutoencoderConfig(image_shape=(1, 8, 8), code_size=16, lam=lam))
        out = m(x)
        assert set(out.terms) == {"recon", "contractive"}
        assert torch.allclose(out.loss, out.terms["recon"] + lam * out.terms["contractive"])
        fit(m, x, epochs=30, lr=1e-2, batch_size=32, progress=False)
        norms[lam] = jacobian_norms(m, x).mean().item()
    assert norms[1.0] < 0.7 * norms[0.0]


@pytest.mark.parametrize("kwargs,field", [
    (dict(lam=-0.1), "lam"), (dict(lam=float("inf")), "lam"), (dict(hidden=(32,)), "one sigmoid layer"),
    (dict(code_act="identity"), "one sigmoid layer"),
])
def test_contractive_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ContractiveAutoencoderConfig(**kwargs)


def test_contractive_penalty_shape_errors():
    with pytest.raises(ValueError):
        losses.contractive_penalty(torch.rand(4, 3), torch.rand(5, 10))
