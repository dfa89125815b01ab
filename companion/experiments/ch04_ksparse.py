"""Chapter 4's experiment: k-sparse autoencoders for several k, and k annealed.

500 linear units with the data-aware initialisation, top-k kept per digit. Measured on
held-out digits: squared error, units never selected (dead), linear probes against raw
pixels, and how local the most used decoder atoms are.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from companion.experiments.core import Claim, Digits, Run, claims, experiment_run, listed, name_of, references
from companion.metrics import dead_units, encode_all, linear_probe_accuracy, reconstruction_error
from companion.models import KSparseAutoencoder, KSparseAutoencoderConfig
from companion.train import steps_per_epoch

NAME = "k-sparse"
CHAPTER = "chapters/04_ksparse_autoencoder"


@dataclass(frozen=True)
class Budget(Digits):
    ks: tuple[int, ...] = (10, 25, 70)
    code_size: int = 500
    anneal: tuple[int, int] = (100, 10)     # k_start → k over the first half of training
    epochs: int = 30
    lr: float = 3e-3
    batch_size: int = 128


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), epochs=100),
    "smoke": Budget(n_train=256, n_test=128, ks=(10, 25), code_size=64, anneal=(40, 10), epochs=1),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("sparse_code_beats_pixels", "the best k-sparse code beats raw pixels under a linear probe",
          lambda m: max(m.series("linear_probe_acc", over="k", model="ksparse").values())
          > m.value("linear_probe_acc", model="pixels")),
    Claim("annealing_revives_units", "annealing k leaves fewer dead units than a fixed small k",
          lambda m: m.value("dead_units", model="ksparse", schedule="annealed")
          < m.series("dead_units", over="k", model="ksparse")[m["annealed_k"]]),
    Claim("atoms_local_at_large_k", "the atoms are more local at the largest k than at the smallest",
          lambda m: (lambda by_k: by_k[max(by_k)] > by_k[min(by_k)])(m.series("locality", over="k", model="ksparse"))),
)


def locality(model: KSparseAutoencoder, code: torch.Tensor, top: int = 100, pixels: int = 50) -> float:
    """Median, over the ``top`` most used atoms, of the share of an atom's energy in its
    ``pixels`` strongest pixels: near 1 for a local stroke, small for a spread-out pattern."""
    atoms = model.decoder[0][1].weight.T.detach().cpu()          # (m, d): one atom per unit
    used = torch.argsort((code != 0).sum(dim=0), descending=True)[:top]
    energy = atoms[used] ** 2
    return (energy.topk(min(pixels, energy.shape[1]), dim=1).values.sum(1) / energy.sum(1)).median().item()


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train one model per k and one annealed on the run's device; measure them on held-out digits."""
    (x_train, y_train), (x_test, y_test) = b.load()
    r.record("linear_probe_acc", linear_probe_accuracy(x_train, y_train, x_test, y_test), model="pixels")
    steps = b.epochs * steps_per_epoch(len(x_train), b.batch_size)
    r.results["codes"] = {}
    for name, k, k_start in [*((name_of(k=k), k, None) for k in b.ks), ("annealed", b.anneal[1], b.anneal[0])]:
        config = KSparseAutoencoderConfig(image_shape=tuple(x_train.shape[1:]), code_size=b.code_size, k=k,
                                          k_start=k_start, anneal_steps=steps // 2 if k_start is not None else 0)
        model = r.train(name, lambda: KSparseAutoencoder(config).init_from_data(x_train), x_train, epochs=b.epochs,
                        lr=b.lr, batch_size=b.batch_size)
        z = r.results["codes"][name] = encode_all(model, x_train)           # training codes (N, m)
        dims = dict(model="ksparse", k=k) if k_start is None else dict(model="ksparse", schedule="annealed")
        r.record("test_mse", reconstruction_error(model, x_test), **dims)
        r.record("dead_units", dead_units(z), **dims)
        r.record("locality", locality(model, z), **dims)
        if k_start is None:
            r.record("linear_probe_acc", linear_probe_accuracy(z, y_train, encode_all(model, x_test), y_test), **dims)
    r.record("annealed_k", b.anneal[1])
    r.record("smallest_k", min(b.ks))
    r.record("largest_k", max(b.ks))


def describe(b: Budget) -> str:
    return (f"k-sparse autoencoder with {b.code_size} linear units, k = {listed(b.ks)} and k annealed "
            f"{b.anneal[0]} → {b.anneal[1]}, {b.epochs} epochs each: held-out error, dead units, linear probes "
            f"against raw pixels, atom locality; {b.data_text()}.")
