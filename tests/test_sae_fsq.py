"""Chapter 11's package: the superposition toy, sparse autoencoders (TopK, L1, AuxK), feature
recovery, and finite scalar quantisation in the VQ-VAE. Each identity is checked against an
independent computation: a closed form, autograd, or a brute-force enumeration."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from companion.data import superposition
from companion.data.superposition import feature_directions
from companion.metrics import feature_recovery, sae_usage
from companion.models import SAE, VQVAE, FiniteScalarQuantizer, SAEConfig, VQVAEConfig
from companion.train import fit


# ----------------------------------------------------------------------------- the toy

def test_the_toy_is_a_sum_of_its_features_and_repeats_with_its_seed():
    toy = superposition(4000, n_features=64, dim=16, rho=0.05, seed=3)
    assert toy.x.shape == (4000, 16) and toy.s.shape == (4000, 64) and toy.directions.shape == (64, 16)
    assert torch.allclose(toy.directions.norm(dim=1), torch.ones(64))
    assert torch.allclose(toy.x, toy.s @ toy.directions, atol=1e-6)
    on = (toy.s > 0).float().mean().item()
    assert abs(on - 0.05) < 3 * math.sqrt(0.05 * 0.95 / toy.s.numel())          # binomial, three standard errors
    assert toy.s[toy.s > 0].min() >= 0.5 and toy.s.max() <= 1
    again = superposition(4000, n_features=64, dim=16, rho=0.05, seed=3)
    assert torch.equal(again.x, toy.x)
    held_out = superposition(100, directions=toy.directions, rho=0.05, seed=4)
    assert torch.equal(held_out.directions, toy.directions)
    with pytest.raises(ValueError, match="disagrees with directions"):
        superposition(10, n_features=65, directions=toy.directions)


def test_random_directions_interfere_about_one_over_root_d():
    d = feature_directions(512, 64, seed=0)
    cos = d @ d.T
    off = cos[~torch.eye(512, dtype=torch.bool)]
    assert abs(off.pow(2).mean().item() - 1 / 64) < 0.1 / 64                  # E[cos²] = 1/d for random directions


# ----------------------------------------------------------------------------- the SAE

def test_topk_keeps_exactly_k_units_and_only_they_get_a_gradient():
    model = SAE(input_dim=8, code_size=32, k=3)
    with torch.no_grad():
        model.b_enc.fill_(10.0)                       # every pre-activation positive: exactly k survive the ReLU
    x = torch.randn(16, 8)
    z = model.encode(x)
    assert ((z > 0).sum(1) == 3).all()
    pre = model.preactivation(x)
    assert torch.equal(z > 0, torch.zeros_like(pre, dtype=torch.bool).scatter_(1, pre.topk(3, dim=1).indices, True))
    model(x).loss.backward()
    chosen = (z > 0).any(0)
    assert (model.W_enc.grad[~chosen] == 0).all() and (model.W_enc.grad[chosen] != 0).any(1).all()


def test_the_decoder_columns_are_unit_directions_and_the_code_carries_the_size():
    model = SAE(input_dim=6, code_size=12, k=2, unit_norm_decoder=True)
    with torch.no_grad():
        model.W_dec.mul_(torch.linspace(0.1, 5, 12))             # stretch the raw columns
    assert torch.allclose(model.directions().norm(dim=1), torch.ones(12), atol=1e-6)
    z = torch.zeros(1, 12)
    z[0, 4] = 2.5
    assert torch.allclose(model.decode(z) - model.b_pre, 2.5 * model.directions()[4], atol=1e-6)
    free = SAE(input_dim=6, code_size=12, k=2, unit_norm_decoder=False)
    assert torch.allclose(free.directions(), free.W_dec.T)


def test_tied_init_starts_the_encoder_as_the_decoders_transpose():
    torch.manual_seed(0)
    tied = SAE(input_dim=6, code_size=12)
    assert torch.equal(tied.W_enc.detach(), tied.W_dec.detach().T)
    untied = SAE(input_dim=6, code_size=12, tied_init=False)
    assert not torch.allclose(untied.W_enc, untied.W_dec.T)


def test_the_l1_sae_adds_lambda_times_the_code_sum():
    model = SAE(input_dim=5, code_size=10, activation="relu", lam=0.3)
    x = torch.randn(7, 5)
    out = model(x)
    z = torch.relu((x - model.b_pre) @ model.W_enc.T + model.b_enc)          # written out again
    assert torch.allclose(out.terms["l1"], z.abs().sum(1).mean())
    assert torch.allclose(out.loss, out.terms["recon"] + 0.3 * out.terms["l1"])
    assert torch.allclose(out.terms["recon"], (x - out.x_hat).pow(2).sum(1).mean())


def _losing_units(aux_k: int) -> SAE:
    """Units 0–7 have positive pre-activations but always lose the top-k to units 8–15."""
    model = SAE(input_dim=8, code_size=16, k=2, aux_k=aux_k, dead_after=1)
    with torch.no_grad():
        model.W_enc.mul_(0.01)
        model.b_enc[:8], model.b_enc[8:] = 1.0, 10.0
    return model


def test_auxk_gives_dead_units_a_gradient_and_its_loss_is_the_written_one():
    torch.manual_seed(0)
    x = torch.randn(32, 8)
    for aux_k, dead_get_gradient in [(4, True), (0, False)]:
        model = _losing_units(aux_k).train()
        model(x)                                        # one training step: units 0–7 never fired, so they are dead
        assert model.dead()[:8].all() and not model.dead()[8:].any()
        model.zero_grad()
        out = model(x)
        out.loss.backward()
        assert ("aux" in out.terms) == bool(aux_k)
        assert bool((model.W_enc.grad[:8] != 0).any()) == dead_get_gradient
    # the AuxK term written out again: the top aux_k dead units reconstruct δ = x − x'
    model = _losing_units(4).train()
    model(x)
    out = model(x)
    pre = (x - model.b_pre) @ model.W_enc.T + model.b_enc
    dead_pre = pre[:, :8]
    keep = torch.zeros_like(dead_pre).scatter_(1, dead_pre.topk(4, dim=1).indices, 1.0)
    z_aux = torch.relu(dead_pre * keep)
    delta = (x - out.x_hat).detach()
    w = model.W_dec / model.W_dec.norm(dim=0, keepdim=True)                       # unit columns, (d, m)
    assert torch.allclose(out.terms["aux"], (delta - z_aux @ w[:, :8].T).pow(2).sum(1).mean(), rtol=1e-5)
    assert torch.allclose(out.loss, out.terms["recon"] + out.terms["aux"] / 32)


def test_only_the_training_step_counts_steps():
    model = _losing_units(4).train()
    x = torch.randn(16, 8)
    model(x)
    before = model.steps_since_fired.clone()
    model.eval()
    model(x)
    model.train()
    with torch.no_grad():
        model(x)
    usage = sae_usage(model, x)
    assert torch.equal(model.steps_since_fired, before) and model.training, "a read must not count as a training step"
    assert usage["unused_fraction"] == pytest.approx(0.5)                        # units 0–7 never fire


def test_feature_recovery_is_one_on_an_orthogonal_toy():
    """Eight orthogonal features in eight dimensions: a TopK SAE with spare units finds every one."""
    directions = torch.eye(8)
    train = superposition(8000, directions=directions, rho=0.1, seed=0)
    torch.manual_seed(0)
    model = SAE(input_dim=8, code_size=16, k=2, aux_k=8, dead_after=50)
    fit(model, train.x, epochs=20, lr=5e-3, batch_size=128, seed=0, progress=False)
    found = feature_recovery(model, directions)
    assert found["recovered"] == 1.0 and found["mean_max_cos"] > 0.95
    assert feature_recovery(torch.eye(8), directions)["recovered"] == 1.0         # the directions themselves
    assert feature_recovery(-torch.eye(8), directions)["recovered"] == 0.0        # opposite directions do not count
    usage = sae_usage(model, superposition(2000, directions=directions, rho=0.1, seed=1).x)
    assert usage["unused_fraction"] < 0.5 and usage["nmse"] < 0.2


def test_sae_usage_against_a_direct_count():
    model = SAE(input_dim=4, code_size=8, k=2).eval()
    x = torch.randn(50, 4)
    z = model.encode(x)
    x_hat = model.decode(z)
    usage = sae_usage(model, x, batch_size=7)
    assert usage["l0"] == pytest.approx((z > 0).sum().item() / 50)
    assert usage["unused_fraction"] == pytest.approx(1 - (z > 0).any(0).float().mean().item())
    assert usage["nmse"] == pytest.approx(((x - x_hat) ** 2).sum().item() / ((x - x.mean(0)) ** 2).sum().item(), rel=1e-5)


# ----------------------------------------------------------------------------- FSQ

@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (8, 4, 4), (2, 3), (7,)])
def test_the_fsq_grid_has_the_product_of_its_levels(levels):
    q = FiniteScalarQuantizer(levels)
    assert q.num_codes == math.prod(levels) and q.codebook.shape == (q.num_codes, len(levels))
    # many random inputs reach every grid point, and only grid points
    z = 2 * torch.randn(200_000, len(levels), 1, 1, generator=torch.Generator().manual_seed(0))
    out = q(z)
    assert sorted(out.indices.unique().tolist()) == list(range(q.num_codes))
    assert torch.allclose(out.z_q[:, :, 0, 0], q.codebook[out.indices[:, 0, 0]])      # index → code is the inverse
    for j, ell in enumerate(levels):                                                 # each dimension: ℓ_j values
        assert len(out.z_q[:, j].unique()) == ell
        assert out.z_q[:, j].abs().max() <= 1


def test_fsq_indices_count_in_mixed_radix_and_invert():
    """Index c of the grid is digit₁ + ℓ₁·digit₂ + ℓ₁ℓ₂·digit₃ …: enumerate the grid by brute force."""
    levels = (3, 4, 2)
    q = FiniteScalarQuantizer(levels)
    by_hand = [[(dj - l // 2) / (l // 2) for dj, l in zip(digits[::-1], levels)]
               for digits in itertools.product(*[range(l) for l in levels[::-1]])]      # first dimension fastest
    assert torch.allclose(q.codebook, torch.tensor(by_hand))
    assert torch.equal(q.index_of(q.codebook), torch.arange(q.num_codes))
    for bad in (torch.tensor([24]), torch.tensor([-1]), torch.tensor([1.0])):
        with pytest.raises(ValueError, match="indices"):
            q.codes(bad)
    with pytest.raises(ValueError, match="points of the grid"):
        q.index_of(torch.tensor([[0.3, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        q(torch.full((1, 3, 2, 2), float("nan")))


def test_fsq_nearest_is_the_closest_grid_point_by_brute_force():
    q = FiniteScalarQuantizer((3, 4, 2))
    points = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * 1.5
    closest = q.codebook[torch.cdist(points, q.codebook).argmin(1)]             # search the whole grid
    assert torch.equal(q.nearest(points), closest)
    assert torch.equal(q.nearest(q.codebook), q.codebook)                      # grid points stay put
    assert torch.equal(q.index_of(q.nearest(points)), q.index_of(closest))
    with pytest.raises(ValueError, match=r"\(\.\.\., D=3\)"):
        q.nearest(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="NaN or infinite"):
        q.nearest(torch.tensor([[float("nan"), 0.0, 0.0]]))


def test_fsq_rounds_the_bounded_value_and_passes_the_gradient_straight_through():
    q = FiniteScalarQuantizer((8, 5))
    z = torch.randn(3, 2, 4, 4, requires_grad=True)
    out = q(z)
    h = q.bound(z)
    half = torch.tensor([4.0, 2.0]).view(1, 2, 1, 1)
    assert torch.allclose(out.z_q, torch.round(h) / half)
    g = torch.randn_like(out.z_q)
    (out.z_q * g).sum().backward()
    ell = torch.tensor([8.0, 5.0]).view(1, 2, 1, 1)
    shift = torch.atanh(torch.tensor([0.999 * 0.5 / 3.5, 0.0])).view(1, 2, 1, 1)
    expected = g * (ell - 1) / 2 * (1 - torch.tanh(z.detach() + shift) ** 2) / half     # d h/dz / ⌊ℓ/2⌋; round passes 1
    assert torch.allclose(z.grad, expected, atol=1e-6)
    assert out.vq == 0 and out.commitment == 0


def test_fsq_even_levels_are_centred():
    q = FiniteScalarQuantizer((4,))
    h = q.bound(torch.linspace(-20, 20, 1001).view(-1, 1, 1, 1))
    assert torch.round(h).unique().tolist() == [-2.0, -1.0, 0.0, 1.0]
    assert q.bound(torch.zeros(1, 1, 1, 1)).item() == pytest.approx(0.0, abs=1e-3)   # z = 0 sits at level 0
    two = FiniteScalarQuantizer((2,))                                                 # the binary case stays finite
    assert torch.round(two.bound(torch.linspace(-20, 20, 1001).view(-1, 1, 1, 1))).unique().tolist() == [-1.0, 0.0]


def test_a_vqvae_with_fsq_keeps_the_model_contract(tmp_path):
    """What tests/test_model_contract.py checks per class, for the FSQ variant of VQVAE: a
    checkpoint rebuilds it, reading changes nothing, and a refused batch changes nothing."""
    from companion.train import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = VQVAE(channels=(4, 8), codebook="fsq", levels=(3, 3, 2))
    fit(model, torch.rand(16, 1, 28, 28), epochs=1, batch_size=8, seed=0, progress=False)
    x = torch.rand(4, 1, 28, 28)
    save_checkpoint(model, tmp_path / "fsq.safetensors")
    again = load_checkpoint(tmp_path / "fsq.safetensors")
    assert again.config == model.config and torch.equal(again.eval().reconstruct(x), model.eval().reconstruct(x))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for mode in (True, False):
        model.train(mode)
        model.decode(model.encode(x))
        model.reconstruct(x)
    with pytest.raises(ValueError):
        model.train()(torch.full((4, 1, 28, 28), float("nan")))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_a_vqvae_with_fsq_needs_no_codebook_or_commitment_loss():
    config = VQVAEConfig(channels=(4, 8), codebook="fsq", levels=(4, 4, 2))
    assert (config.num_codes, config.code_dim) == (32, 3)
    model = VQVAE(config)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert torch.equal(out.loss, out.terms["recon"])
    codes = model.encode(x)
    assert codes.dtype == torch.long and codes.max() < 32
    assert torch.allclose(model.decode(codes), model.reconstruct(x))
    with pytest.raises(ValueError, match="levels is the grid of codebook='fsq'"):
        VQVAEConfig(levels=(4, 4))
    with pytest.raises(ValueError, match="ints ≥ 2"):
        VQVAEConfig(codebook="fsq", levels=(4, 1))
    with pytest.raises(ValueError, match=r"num_codes follows from levels=\(4, 4, 2\)"):
        VQVAEConfig(codebook="fsq", levels=(4, 4, 2), num_codes=64)       # refused, not silently replaced
    assert VQVAEConfig(codebook="fsq", levels=(4, 4, 2), num_codes=32, code_dim=3).num_codes == 32
    assert (VQVAEConfig().num_codes, VQVAEConfig().code_dim) == (64, 16)


def test_the_saved_seed_records_are_quick_runs_whose_claims_hold():
    """The chapter shows seeds 1 and 2 from records that reproduce wrote; they are quick runs of
    this experiment, and every claim the chapter asserts on seed 0 holds on them too."""
    from companion.experiments import ch11_after_the_survey as experiment
    from companion.experiments.core import metrics_of

    records = experiment.seed_records()
    assert sorted(records) == [1, 2]
    for seed, record in records.items():
        assert (record["experiment"], record["budget"], record["seed"]) == (experiment.NAME, "quick", seed)
        m = metrics_of(record)
        assert all(claim.holds(m) for claim in experiment.CLAIMS.values())
