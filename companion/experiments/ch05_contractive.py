"""Chapter 5's experiment: a contractive autoencoder against a plain and a denoising one.

All three have one sigmoid layer of 128 units and start from the same weights. Measured:
held-out error, the mean Frobenius norm of the encoder's Jacobian, its singular value
spectrum, and how much more the code moves along the data than in a random direction.
A sweep over λ feeds the chapter's explorer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from companion.experiments.core import Claim, Digits, Run, claims, experiment_run, listed, references
from companion.metrics import jacobian_norms, jacobian_singular_values, reconstruction_error
from companion.models.base import model_device
from companion.models import (ContractiveAutoencoder, ContractiveAutoencoderConfig, DenoisingAutoencoder,
                              DenoisingAutoencoderConfig)

NAME = "contractive"
CHAPTER = "chapters/05_contractive_autoencoder"


@dataclass(frozen=True)
class Budget(Digits):
    code_size: int = 128
    lam: float = 0.15                        # λ of the contractive model
    noise_level: float = 0.3                 # ν of the denoising model (masking)
    lam_sweep: tuple[float, ...] = (0.05, 0.5, 1.5)   # further contractive models, for the explorer
    epochs: int = 30
    lr: float = 3e-3
    batch_size: int = 128
    n_jacobian: int = 500                    # held-out digits for ‖J‖_F
    n_spectrum: int = 200                    # … for the singular values
    n_shift: int = 300                       # … for the along-data vs random steps
    step: float = 0.5                        # Δ, the length of those steps


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), epochs=100),
    "smoke": Budget(n_train=256, n_test=128, code_size=16, lam_sweep=(), epochs=1, n_jacobian=32, n_spectrum=32,
                    n_shift=32),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("cae_flatter", "the contractive encoder's Jacobian is at most half the plain one's",
          lambda m: m["cae_over_ae_jacobian_norm"] <= 0.5),
    Claim("cae_error_comparable", "at a reconstruction error at most 20% higher",
          lambda m: m["cae_test_mse"] <= 1.2 * m["ae_test_mse"]),
    Claim("cae_contracts_every_direction", "its mean singular values lie below the plain encoder's at every index",
          lambda m: m["cae_spectrum_below_ae"] == 1),
    Claim("cae_concentrates", "it keeps a larger share of its sensitivity in the 10 leading directions",
          lambda m: m["cae_top10_share"] > m["ae_top10_share"]),
    Claim("cae_squashes_minor", "and contracts the minor directions (index ≥ 20) to less than half",
          lambda m: m["cae_minor_singular"] < 0.5 * m["ae_minor_singular"]),
    Claim("cae_more_selective", "a step along the data moves its code more, relative to a random step, "
                                "than the plain encoder's",
          lambda m: m["cae_selectivity"] > m["ae_selectivity"]),
)


def code_shift(model, x0: torch.Tensor, direction: torch.Tensor, step: float) -> float:
    """Mean distance the code moves when the flattened inputs ``x0`` (N, d) take a step of
    length ``step`` along the unit ``direction`` (N, d)."""
    shape, device = (-1, *model.config.image_shape), model_device(model)
    with torch.no_grad():
        h0 = model.encode(x0.reshape(shape).to(device))
        h1 = model.encode((x0 + step * direction).reshape(shape).to(device))
    return (h1 - h0).norm(dim=1).mean().item()


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train the models on the run's device; measure them on held-out digits."""
    (x_train, _), (x_test, _) = b.load()
    shape = tuple(x_train.shape[1:])
    configs = {
        "ae": ContractiveAutoencoderConfig(image_shape=shape, code_size=b.code_size, lam=0.0),
        "dae": DenoisingAutoencoderConfig(image_shape=shape, code_size=b.code_size, hidden=(), code_act="sigmoid",
                                          out_act="sigmoid", noise_level=b.noise_level),
        "cae": ContractiveAutoencoderConfig(image_shape=shape, code_size=b.code_size, lam=b.lam),
        **{f"cae_lam{lam:g}": ContractiveAutoencoderConfig(image_shape=shape, code_size=b.code_size, lam=lam)
           for lam in b.lam_sweep},
    }
    for name, config in configs.items():                    # the same initial weights for all
        r.train(name, lambda: (DenoisingAutoencoder if name == "dae" else ContractiveAutoencoder)(config), x_train,
                epochs=b.epochs, lr=b.lr, batch_size=b.batch_size)
    x0 = x_test[:b.n_shift].reshape(min(b.n_shift, len(x_test)), -1)
    flat_train = x_train.reshape(len(x_train), -1)
    along = flat_train[torch.cdist(x0, flat_train).argmin(dim=1)] - x0    # towards the nearest training digit
    along = along / along.norm(dim=1, keepdim=True)
    random_dir = torch.randn(x0.shape, generator=torch.Generator().manual_seed(r.seed))
    random_dir = random_dir / random_dir.norm(dim=1, keepdim=True)
    r.results["spectra"] = {}
    for name in ("ae", "dae", "cae"):
        m = r.models[name]
        r.record("test_mse", reconstruction_error(m, x_test), model=name)
        r.record("mean_jacobian_norm", jacobian_norms(m, x_test[:b.n_jacobian]).mean(), model=name)
        r.record("selectivity", code_shift(m, x0, along, b.step) / code_shift(m, x0, random_dir, b.step), model=name)
        if name != "dae":
            s = r.results["spectra"][name] = jacobian_singular_values(m, x_test[:b.n_spectrum]).mean(dim=0).cpu()
            r.record("top10_share", s[:10].sum().item() / s.sum().item(), model=name)
            r.record("minor_singular", s[20:].mean() if len(s) > 20 else s[-1], model=name)
    norm = r.metrics.series("mean_jacobian_norm", over="model")
    r.record("over_ae_jacobian_norm", norm["cae"] / norm["ae"], model="cae")
    r.record("spectrum_below_ae", bool((r.results["spectra"]["cae"] < r.results["spectra"]["ae"]).all()), model="cae")


def describe(b: Budget) -> str:
    return (f"Contractive (λ = {b.lam:g}) vs plain and denoising (ν = {b.noise_level:g}) autoencoders with one "
            f"sigmoid layer of {b.code_size} units, {b.epochs} epochs each: held-out error, mean ‖J_g(x)‖_F, "
            f"Jacobian spectra, along-data vs random steps; λ also at {listed(b.lam_sweep)} "
            f"for the explorer; {b.data_text()}.")
