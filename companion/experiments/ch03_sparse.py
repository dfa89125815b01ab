"""Chapter 3's experiment: the sparse autoencoder's KL penalty swept over its weight β.

One :class:`SparseAutoencoder` per β, same seed and same everything else; measured on held-out
digits: the mean activation ρ̂ of the hidden units, the penalty Σ KL(ρ‖ρ̂_j), the squared
error, and a linear probe on the codes. Then an **overcomplete** layer (more hidden units than
pixels), with and without the penalty: does it copy its input? Measured by the gain of a
small random perturbation, ‖change out‖ / ‖change in‖ (:func:`companion.metrics.perturbation_gain`;
the identity scores 1) and by its error on digits whose pixels are scrambled.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from companion import losses
from companion.experiments.core import Claim, Digits, Run, claims, experiment_run, listed, name_of, references
from companion.metrics import encode_all, linear_probe_accuracy, perturbation_gain, reconstruction_error
from companion.models import SparseAutoencoder, SparseAutoencoderConfig
from companion.models.base import model_device

NAME = "sparse"
CHAPTER = "chapters/03_sparse_autoencoder"


@dataclass(frozen=True)
class Budget(Digits):
    betas: tuple[float, ...] = (0.0, 0.3, 1.0, 3.0, 10.0)
    beta: float = 3.0                       # the model the chapter looks at closely
    rho: float = 0.05
    code_size: int = 196
    epochs: int = 40
    lr: float = 5e-3
    batch_size: int = 128
    overcomplete_size: int = 1000           # more hidden units than the 784 pixels
    overcomplete_betas: tuple[float, ...] = (0.0, 3.0)
    overcomplete_epochs: int = 20


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), epochs=100),
    "smoke": Budget(n_train=256, n_test=128, betas=(0.0, 3.0), code_size=16, epochs=1, overcomplete_size=32,
                    overcomplete_epochs=1),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("rho_on_target", "with the penalty the mean held-out activation lands within 0.02 of ρ",
          lambda m: abs(m["sae_beta3_mean_rho_hat"] - 0.05) <= 0.02),
    Claim("plain_code_dense", "without it (β = 0) the units are on far more often (ρ̂ > 0.3)",
          lambda m: m["sae_beta0_mean_rho_hat"] > 0.3),
    Claim("more_weight_sparser", "a larger β gives a sparser code, at every step of the sweep",
          lambda m: all(a > c for a, c in zip(_sweep(m, "mean_rho_hat"), _sweep(m, "mean_rho_hat")[1:]))),
    Claim("sparsity_costs_error", "the sparsest code reconstructs worse than the unpenalised one",
          lambda m: _sweep(m, "test_mse")[-1] > _sweep(m, "test_mse")[0]),
    Claim("overcomplete_does_not_copy", "even without the penalty the overcomplete layer passes on less than half "
                                        "of a random perturbation, far from a copy",
          lambda m: m["over_beta0_perturbation_gain"] < 0.5),
    Claim("penalty_copies_less", "the penalty makes the overcomplete layer pass on less of a random perturbation",
          lambda m: m["over_beta3_perturbation_gain"] < m["over_beta0_perturbation_gain"]),
)


def _sweep(m, metric: str) -> list[float]:
    """One metric of the sparse autoencoders along the β sweep, in increasing β."""
    return list(m.series(metric, over="beta", model="sae").values())


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train one model per β on the run's device; measure each on the held-out split."""
    (x_train, y_train), (x_test, y_test) = b.load()
    for beta in b.betas:
        model = _train(b, r, name_of(beta=beta), x_train, b.code_size, beta, b.epochs)
        with torch.no_grad():
            rho_hat = model.mean_activations(x_test.to(model_device(model)))[0].cpu()
        r.record("mean_rho_hat", rho_hat.mean(), model="sae", beta=beta)
        r.record("kl", losses.kl_bernoulli(b.rho, rho_hat).sum(), model="sae", beta=beta)
        r.record("test_mse", reconstruction_error(model, x_test), model="sae", beta=beta)
        r.record("linear_probe_acc", linear_probe_accuracy(encode_all(model, x_train), y_train,
                                                           encode_all(model, x_test), y_test), model="sae", beta=beta)
    r.record("linear_probe_acc", linear_probe_accuracy(x_train, y_train, x_test, y_test), model="pixels")
    _overcomplete(b, r, x_train, x_test, r.seed)


def _train(b: Budget, r: Run, name: str, x_train, code_size: int, beta: float, epochs: int) -> SparseAutoencoder:
    """One sparse autoencoder of ``code_size`` units and weight ``beta``, trained in ``r`` as ``name``."""
    config = SparseAutoencoderConfig(image_shape=tuple(x_train.shape[1:]), code_size=code_size, rho=b.rho, beta=beta)
    return r.train(name, lambda: SparseAutoencoder(config), x_train, epochs=epochs, lr=b.lr, batch_size=b.batch_size)


def _overcomplete(b: Budget, r: Run, x_train, x_test, seed: int) -> None:
    """More hidden units than pixels, with and without the penalty: how close to a copy?"""
    g = torch.Generator().manual_seed(seed)
    scrambled = x_test.flatten(1)[:, torch.randperm(x_test[0].numel(), generator=g)].view_as(x_test)
    for beta in b.overcomplete_betas:
        model = _train(b, r, name_of(model="over", beta=beta), x_train, b.overcomplete_size, beta,
                       b.overcomplete_epochs)
        with torch.no_grad():
            r.record("mean_rho_hat", model.mean_activations(x_test.to(model_device(model)))[0].mean(), model="over",
                     beta=beta)
        r.record("test_mse", reconstruction_error(model, x_test), model="over", beta=beta)
        r.record("scrambled_mse", reconstruction_error(model, scrambled), model="over", beta=beta)
        r.record("perturbation_gain", perturbation_gain(model, x_test[:500], seed=seed), model="over", beta=beta)


def describe(b: Budget) -> str:
    return (f"Sparse autoencoder ({b.code_size} sigmoid units, ρ = {b.rho:g}) with β = {listed(b.betas)}, {b.epochs} "
            f"epochs each: held-out mean activation, penalty, error and linear probe; an overcomplete layer of "
            f"{b.overcomplete_size} units with β = {listed(b.overcomplete_betas)}, {b.overcomplete_epochs} epochs "
            f"each; {b.data_text()}.")
