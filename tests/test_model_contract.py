"""The contract every model follows: one base class, a config that rebuilds it from a
checkpoint alone, ``decode(encode(x))`` for every autoencoder, loss terms apart from
statistics, and ``fit`` taking a tensor, a tuple of tensors or a TensorDataset."""
import dataclasses
import math

import pytest
import torch
from torch.utils.data import TensorDataset

import companion
from companion.models import (REGISTRY, VAE, VQVAE, VQVAE2, Autoencoder, EncoderDecoder, Model, PCA, PixelCNN, PixelSNAIL, Prior,
                              VAEConfig)
from companion.models.base import Output
from companion.models.pixelcnn import repeat_codes
from companion.models.tdvae import TDVAE
from companion.train import evaluate, fit, load_checkpoint, save_checkpoint


def _images(shape=(1, 28, 28), n=4):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


#: a small instance of every registered model, and an input for it
SMALL = {
    "Autoencoder": (lambda: Autoencoder(code_size=3, hidden=(8,)), _images),
    "DenoisingAutoencoder": (lambda: REGISTRY["DenoisingAutoencoder"][0](code_size=3, hidden=(8,)), _images),
    "SparseAutoencoder": (lambda: REGISTRY["SparseAutoencoder"][0](code_size=8), _images),
    "KSparseAutoencoder": (lambda: REGISTRY["KSparseAutoencoder"][0](code_size=16, k=3), _images),
    "ContractiveAutoencoder": (lambda: REGISTRY["ContractiveAutoencoder"][0](code_size=4), _images),
    "VAE": (lambda: VAE(latent_size=2, hidden=(8,)), _images),
    "VQVAE": (lambda: VQVAE(num_codes=8, code_dim=4, channels=(4, 8)), _images),
    "VQVAE2": (lambda: VQVAE2(channels=(4, 8), code_dim=4, num_codes_top=8, num_codes_bottom=8),
               lambda: _images((1, 32, 32))),
    "TDVAE": (lambda: TDVAE(belief_size=8, z_size=2, hidden=8), lambda: torch.rand(3, 6, 1, 28, 28)),
    "PCA": (lambda: PCA(3).fit(_images(n=20)), _images),
    "PixelCNN": (lambda: PixelCNN(8, channels=8, layers=2), lambda: torch.randint(8, (3, 5, 5))),
    "PixelSNAIL": (lambda: PixelSNAIL(8, (4, 4), channels=8, blocks=2, heads=2),
                   lambda: torch.randint(8, (3, 4, 4))),
    "SAE": (lambda: REGISTRY["SAE"][0](input_dim=6, code_size=12, k=2, aux_k=4, dead_after=1),
            lambda: torch.randn(5, 6)),
}


def test_every_registered_model_is_covered():
    assert set(SMALL) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_round_trip_through_a_checkpoint_from_the_file_alone(name, tmp_path):
    factory, data = SMALL[name]
    companion.seed_everything(0)
    model = factory().eval()
    assert isinstance(model, Model) and dataclasses.is_dataclass(model.config)
    path = save_checkpoint(model, tmp_path / f"{name}.safetensors")
    again = load_checkpoint(path).eval()
    assert type(again) is type(model) and again.config == model.config
    state, state2 = model.state_dict(), again.state_dict()
    assert state.keys() == state2.keys() and all(torch.equal(state[k], state2[k]) for k in state)
    x = data()
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    out2 = again(x)
    assert torch.equal(out.loss, out2.loss)


@pytest.mark.parametrize("name", ["Autoencoder", "DenoisingAutoencoder", "SparseAutoencoder", "KSparseAutoencoder",
                                  "ContractiveAutoencoder", "VAE", "VQVAE", "VQVAE2", "TDVAE", "PCA"])
def test_decode_takes_what_encode_returns(name):
    factory, data = SMALL[name]
    model, x = factory().eval(), data()
    with torch.no_grad():
        out = model.decode(model.encode(x))
    images = out.mean if isinstance(out, torch.distributions.Distribution) else out
    assert images.shape == x.shape


def test_config_or_keywords_or_positional_fields():
    assert PCA(2).config == PCA(code_size=2).config
    assert PixelSNAIL(8, (4, 4), channels=8, heads=2).config.grid_shape == (4, 4)
    assert VAE(VAEConfig(latent_size=3)).config == VAE(latent_size=3).config
    with pytest.raises(TypeError, match="not both"):
        VAE(VAEConfig(), latent_size=3)
    with pytest.raises(TypeError, match="needs a VQVAEConfig"):
        VQVAE(VAEConfig())
    with pytest.raises(TypeError, match="positional"):
        VAE(3)
    with pytest.raises(TypeError, match="both positionally"):
        PCA(2, code_size=3)
    with pytest.raises(ValueError, match="code_size"):
        PCA(0)


def test_terms_are_loss_parts_and_stats_are_not():
    vq = VQVAE(num_codes=8, code_dim=4, channels=(4, 8))
    out = vq(_images())
    assert "perplexity" in out.stats and "perplexity" not in out.terms
    cap = VAE(latent_size=2, hidden=(8,), capacity=5.0, capacity_steps=10)
    assert "capacity" in cap(_images()).stats
    h = fit(vq, _images(n=8), epochs=1, batch_size=4, progress=False)
    assert {"loss", "recon", "perplexity"} <= set(h.train)            # both are logged
    with pytest.raises(ValueError, match="distinct"):
        Output(loss=torch.tensor(0.0), terms={"a": torch.tensor(0.0)}, stats={"a": torch.tensor(1.0)})


def test_fit_takes_a_tuple_or_a_tensor_dataset_and_calls_model_with_the_batch():
    x = _images(n=16)
    noisy = (x + 0.3 * torch.rand_like(x)).clamp(0, 1)
    companion.seed_everything(0)
    a = Autoencoder(code_size=3, hidden=(8,), out_act="sigmoid")
    h_tuple = fit(a, (noisy, x), epochs=2, batch_size=8, progress=False)   # forward(x_noisy, target=x_clean)
    companion.seed_everything(0)
    b = Autoencoder(code_size=3, hidden=(8,), out_act="sigmoid")
    h_ds = fit(b, TensorDataset(noisy, x), epochs=2, batch_size=8, progress=False)
    assert h_tuple.train == h_ds.train
    assert evaluate(a, (noisy, x))["recon"] != evaluate(a, noisy)["recon"]
    prior = PixelSNAIL(8, (4, 4), channels=8, blocks=1, heads=2, cond_codes=4)
    codes, cond = torch.randint(8, (6, 4, 4)), torch.randint(4, (6, 2, 2))
    h = fit(prior, (codes, repeat_codes(cond, (4, 4))), epochs=1, batch_size=3, progress=False)
    assert h.train["bits_per_code"][0] > 0
    with pytest.raises(ValueError, match="same length"):
        fit(a, (noisy, x[:3]), epochs=1, progress=False)
    with pytest.raises(TypeError, match="TensorDataset"):
        fit(a, [1, 2, 3], epochs=1, progress=False)


ENCODER_DECODERS = sorted(n for n, (cls, _) in REGISTRY.items() if issubclass(cls, EncoderDecoder))
PRIORS = sorted(n for n, (cls, _) in REGISTRY.items() if issubclass(cls, Prior))

#: the same families with 2-D continuous codes, for the explorers of a 2-D code
TWO_D = {
    "Autoencoder": lambda: Autoencoder(code_size=2, hidden=(8,)),
    "DenoisingAutoencoder": lambda: REGISTRY["DenoisingAutoencoder"][0](code_size=2, hidden=(8,)),
    "SparseAutoencoder": lambda: REGISTRY["SparseAutoencoder"][0](code_size=2),
    "KSparseAutoencoder": lambda: REGISTRY["KSparseAutoencoder"][0](code_size=2, k=1),
    "ContractiveAutoencoder": lambda: REGISTRY["ContractiveAutoencoder"][0](code_size=2),
    "VAE": lambda: VAE(latent_size=2, hidden=(8,)),
    "TDVAE": lambda: TDVAE(belief_size=8, z_size=2, hidden=8),
    "PCA": lambda: PCA(2).fit(_images(n=20)),
}


def test_every_model_is_one_kind_or_the_other():
    assert set(ENCODER_DECODERS) | set(PRIORS) == set(REGISTRY) and not set(ENCODER_DECODERS) & set(PRIORS)
    for name in PRIORS:
        assert not hasattr(REGISTRY[name][0], "encode") and not hasattr(REGISTRY[name][0], "decode")


@pytest.mark.parametrize("name", ENCODER_DECODERS)
def test_every_helper_works_on_every_encoder_decoder(name):
    """reconstruct, reconstruction_error, encode_all, encoder_jacobian (continuous codes), and
    decoded_grid / latent_map (2-D codes) on every model with an encoder and a decoder."""
    from companion.metrics import encode_all, encoder_jacobian, reconstruction_error
    from companion.viz import decoded_grid
    from companion.viz.widgets import latent_map

    factory, data = SMALL[name]
    companion.seed_everything(0)
    model, x = factory().eval(), data()
    with torch.no_grad():
        x_hat, code = model.reconstruct(x), model.code(x)
        again = model.decode_mean(model.encode(x))          # decode takes what encode returns
    assert isinstance(x_hat, torch.Tensor) and x_hat.shape == x.shape and torch.allclose(x_hat, again)
    assert math.isfinite(reconstruction_error(model, x))
    continuous = isinstance(code, torch.Tensor) and code.is_floating_point()
    if isinstance(code, torch.Tensor):
        assert torch.equal(encode_all(model, x), code)
    if continuous:
        jac = encoder_jacobian(model, x[:2])
        assert jac.shape == (2, code[0].numel(), x[0].numel())
        check = torch.autograd.functional.jacobian(lambda xi: model.code(xi[None])[0], x[0])
        assert torch.allclose(jac[0], check.reshape(code[0].numel(), -1), atol=1e-5)
    else:
        with pytest.raises(TypeError, match="continuous codes|EncoderDecoder"):
            encoder_jacobian(model, x[:2])
    if name in TWO_D:
        model2 = TWO_D[name]().eval()
        for decode in (model2, model2.decode, model2.decode_mean):
            grid = decoded_grid(decode, (-1, 1), (-1, 1), n=2)
            assert grid.shape[0] == 4 and grid.shape[-2:] == x.shape[-2:]
        assert latent_map(model2.decode, steps=2, mode="static") is not None


@pytest.mark.parametrize("name", PRIORS)
def test_priors_score_and_sample_code_grids(name):
    factory, data = SMALL[name]
    companion.seed_everything(0)
    prior, grids = factory().eval(), data()
    with torch.no_grad():
        log_p = prior.log_prob(grids)
        assert log_p.shape == (len(grids),) and (log_p < 0).all()
        assert torch.allclose(-log_p.mean(), prior(grids).loss, rtol=1e-5)
        sample = prior.sample(2, tuple(grids.shape[1:]), generator=torch.Generator().manual_seed(0))
    assert sample.shape == (2, *grids.shape[1:]) and sample.dtype == torch.long


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reading_a_model_changes_nothing(name, mode):
    """encode, decode, code, decode_mean, reconstruct, the metrics that read a model, and the
    priors' log_prob and sample leave every parameter and buffer bit-identical, in train and in
    eval mode (a VQ-VAE's codebook moves in its training step only)."""
    from companion.metrics import encode_all, reconstruction_error

    factory, data = SMALL[name]
    companion.seed_everything(0)
    model, x = factory(), data()
    model.train(mode == "train")
    before = _state(model)
    if isinstance(model, EncoderDecoder):
        z = model.encode(x)
        model.decode(z)
        model.decode_mean(model.code(x))
        model.reconstruct(x)
        reconstruction_error(model, x)
        if isinstance(model.code(x), torch.Tensor):
            encode_all(model, x)
    else:
        model.log_prob(x)
        model.sample(2, tuple(x.shape[1:]), generator=torch.Generator().manual_seed(0))
    after = _state(model)
    assert model.training == (mode == "train")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), \
        [k for k in before if not torch.equal(before[k], after[k])]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_model_changes_its_inputs_and_a_refused_call_changes_nothing(name):
    """forward (train and eval), encode and reconstruct leave their inputs as they were; a
    refused forward (NaN in the batch, in training mode) leaves every parameter and buffer."""
    factory, data = SMALL[name]
    companion.seed_everything(0)
    model, x = factory(), data()
    kept = x.clone()
    for mode in (True, False):
        model.train(mode)
        model(x)
        if isinstance(model, EncoderDecoder):
            model.encode(x)
            model.reconstruct(x)
        assert torch.equal(x, kept), f"{name} changed its input (training={mode})"
    model.train()
    before = _state(model)
    bad = x.clone().float()
    bad.view(-1)[0] = float("nan")
    with pytest.raises((ValueError, TypeError)):
        model(bad if x.is_floating_point() else bad.long().fill_(-1))
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
