"""Every helper that takes a model feeds it batches on the model's device, never CPU tensors.

This machine has no GPU, so each model is moved to PyTorch's ``meta`` device (shapes, no
data) and its methods are wrapped to record the device of every tensor they receive. A
helper may then fail where it copies a meta result back to the CPU (there is no data to
copy), but by then the record shows what it fed the model. A helper that forgot to move a
batch is caught: the record shows ``cpu``.
"""
from __future__ import annotations

import types

import pytest
import torch

import companion
from companion import metrics
from companion.data import DSprites
from companion.data.sequences import Sequences
from companion.models import (VAE, VQVAE, VQVAE2, Autoencoder, ContractiveAutoencoder, PixelCNN, PixelSNAIL,
                              SparseAutoencoder, VAEConfig, VQVAE2Config, VQVAEConfig)
from companion.models.tdvae import TDVAE, TDVAEConfig
from companion.train import evaluate
from companion.viz import decoded_grid
from companion.viz.widgets import latent_map

META = torch.device("meta")
METHODS = ("forward", "encode", "decode", "logits", "predict", "beliefs", "posterior_params", "mean_activations")


def spy(model: torch.nn.Module) -> list[torch.device]:
    """Wrap the model's public methods so that each records the devices of its tensor arguments."""
    seen: list[torch.device] = []

    def record(value):
        if isinstance(value, torch.Tensor):
            seen.append(value.device)
        elif isinstance(value, (tuple, list)):
            for v in value:
                record(v)

    for name in METHODS:
        method = getattr(model, name, None)
        if method is None:
            continue

        def wrapped(self, *args, __method=method, **kwargs):
            record(args)
            record(list(kwargs.values()))
            return __method(*args, **kwargs)

        setattr(model, name, types.MethodType(wrapped, model))    # still a bound method of the model
    return seen


def fed(model, helper) -> list[torch.device]:
    """Run ``helper(model)`` with ``model`` on the meta device; return the devices it fed it."""
    model = model.to(META)
    seen = spy(model)
    try:
        helper(model)
    except (NotImplementedError, RuntimeError) as e:     # copying a meta result out: expected
        if "meta" not in str(e).lower() and "cpu" in str(e).lower():
            raise
    return seen


def images(n=6, shape=(1, 28, 28)):
    return torch.rand(n, *shape)


def frames(n=3, t=6):
    return torch.rand(n, t, 1, 28, 28)


def seqs(n=3, t=6):
    return Sequences(frames(n, t), torch.rand(n, t), torch.rand(n, t), torch.zeros(n, dtype=torch.long))


companion.seed_everything(0)
AE2 = lambda: Autoencoder(code_size=2, hidden=(8,))  # noqa: E731
HELPERS = {
    "reconstruction_error": (AE2, lambda m: metrics.reconstruction_error(m, images())),
    "encode_all": (AE2, lambda m: metrics.encode_all(m, images())),
    "encode_all (VAE)": (lambda: VAE(VAEConfig(latent_size=2, hidden=(8,))), lambda m: metrics.encode_all(m, images())),
    "importance_weighted_log_likelihood": (lambda: VAE(VAEConfig(latent_size=2, hidden=(8,))),
                                           lambda m: metrics.importance_weighted_log_likelihood(m, images(), k=3)),
    "evaluate": (AE2, lambda m: evaluate(m, images())),
    "code_counts": (lambda: VQVAE(VQVAEConfig(num_codes=8, code_dim=4, channels=(4, 8))),
                    lambda m: metrics.code_counts(m, images())),
    "codebook_usage": (lambda: VQVAE(VQVAEConfig(num_codes=8, code_dim=4, channels=(4, 8))),
                       lambda m: metrics.codebook_usage(m, images())),
    "jacobian_norms": (lambda: ContractiveAutoencoder(code_size=4), lambda m: metrics.jacobian_norms(m, images(2))),
    "decoded_grid": (AE2, lambda m: decoded_grid(m.decode, (-1, 1), (-1, 1), n=3)),
    "decoded_grid (function, device=)": (AE2, lambda m: decoded_grid(lambda z: m.decode(z), (-1, 1), (-1, 1), n=3,
                                                                      device=META)),
    "latent_map (live)": (AE2, lambda m: latent_map(m.decode, steps=2, mode="live")),
    "PixelCNN.sample (CPU condition-free)": (lambda: PixelCNN(8, channels=8, layers=2),
                                             lambda m: m.sample(2, (3, 3), generator=torch.Generator().manual_seed(0))),
    "metrics.code_grids": (lambda: VQVAE(VQVAEConfig(num_codes=8, code_dim=4, channels=(4, 8))),
                               lambda m: metrics.code_grids(m, images())),
    "metrics.level_codes": (lambda: VQVAE2(VQVAE2Config(channels=(4, 8), code_dim=4, num_codes_top=8,
                                                            num_codes_bottom=8)),
                                lambda m: metrics.level_codes(m, images(shape=(1, 32, 32)))),
    "metrics.jumpy_errors": (lambda: TDVAE(TDVAEConfig(belief_size=8, z_size=2, hidden=8)),
                                 lambda m: metrics.jumpy_errors(m, frames(), 1, (1, 2), mean_frame=torch.zeros(1, 28, 28),
                                                            samples=2)),
    "metrics.belief_probe": (lambda: TDVAE(TDVAEConfig(belief_size=8, z_size=2, hidden=8)),
                                 lambda m: metrics.belief_probe(m, seqs(), seqs(), {"p": lambda s: s.position})),
    "metrics.swap_agreement": (lambda: VQVAE2(VQVAE2Config(channels=(4, 8), code_dim=4, num_codes_top=8,
                                                               num_codes_bottom=8)),
                                   lambda m: metrics.swap_agreement(m, images(4, (1, 32, 32)), torch.zeros(4, dtype=torch.long),
                                                                lambda im: torch.zeros(len(im)))),
    "VQVAE2.sample": (lambda: VQVAE2(VQVAE2Config(channels=(4, 8), code_dim=4, num_codes_top=8,
                                                               num_codes_bottom=8)),
                                   lambda m: m.sample(PixelSNAIL(8, (4, 4), channels=8, blocks=1, heads=2),
                                                     PixelSNAIL(8, (8, 8), channels=8, blocks=1, heads=2,
                                                                cond_codes=8), 2,
                                                     top=torch.zeros(2, 4, 4, dtype=torch.long))),
    "metrics.dsprites_report": (lambda: VAE(VAEConfig(image_shape=(1, 32, 32), latent_size=2, hidden=(8,))),
                                    lambda m: metrics.dsprites_report(m, DSprites(32), torch.rand(4, 1, 32, 32),
                                                                  points=20, mig_samples=50)),
    "metrics.corruption_curve": (AE2, lambda m: metrics.corruption_curve({"ae": m}, images(), [0.5])),
    "SparseAutoencoder via encode_all": (lambda: SparseAutoencoder(code_size=8),
                                                      lambda m: metrics.encode_all(m, images())),
}


@pytest.mark.parametrize("name", list(HELPERS))
def test_helper_feeds_the_model_on_its_device(name):
    factory, helper = HELPERS[name]
    seen = fed(factory(), helper)
    assert seen, f"{name} never called the model"
    assert set(seen) == {META}, f"{name} fed the model tensors on {sorted(map(str, set(seen)))}"


def test_the_spy_catches_a_cpu_batch():
    """The negative control: feeding CPU images to a meta model is recorded as such."""
    seen = fed(AE2(), lambda m: m.encode(images()))
    assert torch.device("cpu") in seen


def test_helpers_return_cpu_results():
    model = AE2()
    assert metrics.encode_all(model, images()).device.type == "cpu"
    assert decoded_grid(model.decode, (-1, 1), (-1, 1), n=2).device.type == "cpu"
    assert metrics.jacobian_norms(ContractiveAutoencoder(code_size=4), images(2)).device.type == "cpu"


def test_get_device():
    assert companion.get_device("cpu") == torch.device("cpu")
    assert companion.get_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(TypeError, match="leave things where they are"):
        companion.get_device(None)
    with pytest.raises(ValueError, match="unknown device"):
        companion.get_device("tpu")
    with pytest.raises(TypeError):
        companion.get_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            companion.get_device("cuda")


def test_fit_takes_a_device_name():
    from companion.train import fit

    model = AE2()
    fit(model, images(8), epochs=1, device="cpu", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            fit(model, images(8), epochs=1, device="cuda", progress=False)


def test_reproduce_device_flag(capsys):
    from companion.__main__ import main

    if not torch.cuda.is_available():
        assert main(["reproduce", "autoencoder", "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert main(["reproduce", "autoencoder", "--device", "nonsense"]) == 2
