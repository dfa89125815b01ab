"""Chapter 7's experiment: β-VAEs, controlled capacity and a β-TCVAE on procedurally rendered sprites.

One architecture (MLP encoder, mirrored decoder, Bernoulli pixels, 10-D code) trained with
several β, with Burgess et al.'s capacity objective γ |KL − C| (C rising linearly over the
first half of training) and with Chen et al.'s β-TCVAE objective (only the total correlation
weighted up). The data are a reduced dSprites: one unrotated ellipse at one scale, every x
position and the middle half of the y positions, so that x and y are no longer exchangeable
(see the chapter's section on symmetry); the ``full`` budget trains on all five factors at
64×64. Each model is measured on test sprites (reconstruction, KL, active coordinates) and on
freshly rendered factor combinations (β-VAE score, FactorVAE score, MIG). The test sprites are a
separate draw from the same grid, not held out: on the reduced grid (512 images) every test
image also occurs among the training images.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from companion.data.dsprites import DSprites, SHAPE_NAMES
from companion.experiments.core import Claim, Run, claims, dashed, experiment_run, listed, name_of, references
from companion.metrics import dsprites_report
from companion.models import VAE, VAEConfig
from companion.train import steps_per_epoch

NAME = "beta-vae"
CHAPTER = "chapters/07_beta_vae"

REPORTED = ("recon", "kl", "active", "beta_vae", "factor_vae", "mig")

#: The record of ``python -m companion reproduce beta-vae --budget full`` (all of dSprites at
#: 64×64, about 20 minutes on 2 CPU cores), shipped so that the chapter can quote it.
FULL_RECORD = Path(__file__).parent / "records" / "beta_vae_full.json"


@dataclass(frozen=True)
class Budget:
    size: int = 32                          # sprites rendered at size×size
    shape: str | None = "ellipse"           # the factor grid: one value of a factor fixes it, None keeps all
    scale: int | None = 5                   # class of the scale (5: the largest)
    orientation: int | None = 0
    pos_y: tuple[int, int] = (8, 24)        # the kept y classes, lo … hi − 1 (x keeps all 32)
    n_train: int = 50_000
    n_test: int = 2_000
    betas: tuple[float, ...] = (1.0, 4.0, 16.0)
    capacity: float | None = 5.0            # C's final value (nats) of the capacity model (None: no such model)
    gamma: float = 100.0
    tc_weight: float | None = 16.0          # the β-TCVAE's weight on the total correlation (None: no such model)
    latent_size: int = 10
    hidden: tuple[int, ...] = (256, 128)
    epochs: int = 2                         # a third changed no claim, nor any seed's separation in the sweep
    lr: float = 3e-3
    batch_size: int = 64
    points: int = 300                       # votes of the β-VAE and FactorVAE scores
    mig_samples: int = 10_000


BUDGETS = {
    "quick": Budget(),
    "full": Budget(size=64, shape=None, scale=None, orientation=None, pos_y=(0, 32), n_train=300_000,
                   betas=(1.0, 4.0, 16.0),
                   capacity=20.0, epochs=6, lr=1e-3, batch_size=128, points=1000),
    "smoke": Budget(n_train=512, n_test=128, betas=(1.0, 4.0), capacity=2.0, tc_weight=4.0, hidden=(32,), epochs=1,
                    points=20, mig_samples=500),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("rate_falls_with_beta", "the KL (rate) falls at every step up in β",
          lambda m: _rises(-v for v in _along_beta(m, "kl").values())),
    Claim("distortion_rises_with_beta", "the reconstruction cost rises at every step up in β",
          lambda m: _rises(_along_beta(m, "recon").values())),
    Claim("fewer_active_with_beta", "the largest β keeps fewer active coordinates than β = 1",
          lambda m: _top(m, "active") < m.value("active", beta=1)),
    Claim("capacity_on_target", "the capacity objective holds the KL within 15% of its target C",
          lambda m: abs(m["capacity_kl"] - m["capacity_target"]) < 0.15 * m["capacity_target"]),
    Claim("scores_above_chance", "every model's β-VAE score is above chance (one over the number of factors)",
          lambda m: all(r["value"] > 1.2 / m["factors"] for r in m.records() if r["metric"] == "beta_vae")),
    Claim("beta_separates", "the largest β has at least twice the MIG of β = 1, and at least 0.15",
          lambda m: separates(_top(m, "mig"), m.value("mig", beta=1))),
    Claim("tcvae_keeps_more", "the β-TCVAE keeps more active coordinates and a lower MIG than the β-VAE with the "
                              "same weight",
          lambda m: m["tcvae_active"] > _top(m, "active") and m["tcvae_mig"] < _top(m, "mig")),
)


def separates(mig_beta: float, mig_one: float) -> bool:
    """The chapter's test of separation: a β > 1 model's MIG is at least 0.15 and at least
    twice that of β = 1 (trained with the same seed)."""
    return mig_beta >= max(0.15, 2 * mig_one)


def _along_beta(m, metric: str) -> dict[float, float]:
    """``{β: number}`` of the β models, in increasing β."""
    return m.series(metric, over="beta")


def _top(m, metric: str) -> float:
    """``metric`` of the largest β."""
    return list(_along_beta(m, metric).values())[-1]


def _rises(values) -> bool:
    values = list(values)
    return all(a < c for a, c in zip(values, values[1:]))


def grid(b: Budget):
    """The factor grid of budget ``b``: a :class:`SpriteSubset` of dSprites, or all of it."""
    ds = DSprites(size=b.size)
    kept = {name: v for name, v in (("shape", None if b.shape is None else SHAPE_NAMES.index(b.shape)),
                                    ("scale", b.scale), ("orientation", b.orientation)) if v is not None}
    if not kept and tuple(b.pos_y) == (0, 32):
        return ds
    return ds.subset(pos_y=range(*b.pos_y), **kept)


def data(b: Budget):
    """The factor grid and the training and test sprites of budget ``b``: ``(grid, train,
    test)`` (``sample`` results; the seeds are fixed so every run sees the same images). The two
    are independent draws from the same grid, so they can share images."""
    g = grid(b)
    return g, g.sample(b.n_train, seed=1), g.sample(b.n_test, seed=2)


def variants(b: Budget, n_train: int) -> dict[str, tuple[dict, dict]]:
    """The models of budget ``b`` by name: ``{name: (dims, VAEConfig fields)}``, the dims
    being what their metrics are recorded under (``beta=4``, or ``model="capacity"``)."""
    steps = b.epochs * steps_per_epoch(n_train, b.batch_size)
    out = {name_of(beta=beta): ({"beta": beta}, dict(beta=beta)) for beta in b.betas}
    if b.capacity is not None:
        out["capacity"] = ({"model": "capacity"}, dict(capacity=b.capacity, gamma=b.gamma,
                                                        capacity_steps=max(1, steps // 2)))
    if b.tc_weight is not None:
        out["tcvae"] = ({"model": "tcvae"}, dict(tc_weight=b.tc_weight, dataset_size=n_train))
    return out


def train(r: Run, b: Budget, name: str, x_train, kw: dict, *, seed: int | None = None) -> VAE:
    """One model of budget ``b`` (VAEConfig fields ``kw``), trained in ``r`` as ``name``."""
    config = VAEConfig(image_shape=tuple(x_train.shape[1:]), latent_size=b.latent_size, hidden=b.hidden, **kw)
    return r.train(name, lambda: VAE(config), x_train, seed=seed, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train one model per β, the capacity model and the β-TCVAE on the run's device; report each."""
    g, train_set, test_set = data(b)
    x_train, x_test = train_set.images, test_set.images
    models = variants(b, len(x_train))
    for name, (_, kw) in models.items():
        train(r, b, name, x_train, kw)
    # every model scored on the same freshly rendered sprites, each rendered once
    r.results["reports"] = dsprites_report(dict(r.models), g, x_test, points=b.points, mig_samples=b.mig_samples)
    for name, rep in r.results["reports"].items():
        for key in REPORTED:
            r.record(key, rep[key], **models[name][0])
    r.record("factors", len(g.factor_sizes))
    if b.capacity is not None:
        r.record("capacity_target", b.capacity)


def full_record() -> dict:
    """The saved record of the ``full`` budget (what ``reproduce`` wrote), as a dict."""
    return json.loads(FULL_RECORD.read_text())


def describe(b: Budget) -> str:
    g = grid(b)
    what = "all of dSprites" if isinstance(g, DSprites) else f"dSprites reduced to {', '.join(g.factor_names)}"
    extra = "".join([f", controlled capacity (γ = {b.gamma:g}, C → {b.capacity:g} nats)" if b.capacity is not None else "",
                     f", a β-TCVAE (TC weight {b.tc_weight:g})" if b.tc_weight is not None else ""])
    return (f"VAE with β = {listed(b.betas)}{extra} on {what} "
            f"({'×'.join(map(str, g.factor_sizes))} values) rendered at {b.size}×{b.size}, MLP "
            f"{dashed(b.hidden)}, {b.latent_size}-D code, {b.n_train * b.epochs:,} images seen per "
            f"model: test-set reconstruction and KL, active dimensions, β-VAE score, FactorVAE score, MIG.")
