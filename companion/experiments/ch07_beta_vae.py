"""Chapter 7's experiment: β-VAEs and controlled capacity on procedurally rendered dSprites.

One architecture (MLP encoder, mirrored decoder, Bernoulli pixels, 10-D code) trained with
several β and with Burgess et al.'s capacity objective γ |KL − C|, C rising linearly over the
first half of training. Each model is measured on held-out sprites (reconstruction, KL,
active coordinates) and on freshly rendered factor combinations (β-VAE score, FactorVAE
score, MIG).
"""
from __future__ import annotations

from dataclasses import dataclass

import companion
from companion.data.dsprites import DSprites
from companion.experiments.core import Claim, Run, cached, claims, finish, start
from companion.metrics import dsprites_report
from companion.models import VAE, VAEConfig
from companion.train import fit

NAME = "beta-vae"
CHAPTER = "chapters/07_beta_vae"

REPORTED = ("recon", "kl", "active", "beta_vae", "factor_vae", "mig")


@dataclass(frozen=True)
class Budget:
    size: int = 32                          # sprites rendered at size×size
    n_train: int = 50_000
    n_test: int = 2_000
    betas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    capacity: float = 12.0                  # C's final value (nats); the capacity model
    gamma: float = 100.0
    latent_size: int = 10
    hidden: tuple[int, ...] = (256, 128)
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 64
    points: int = 300                       # votes of the β-VAE and FactorVAE scores
    mig_samples: int = 10_000


BUDGETS = {
    "quick": Budget(),
    "full": Budget(size=64, n_train=300_000, betas=(1.0, 4.0), capacity=20.0, epochs=6, batch_size=128, points=1000),
    "smoke": Budget(n_train=512, n_test=128, betas=(1.0, 4.0), hidden=(32,), epochs=1, points=20, mig_samples=500),
}

REFERENCES = {
    "beta1_beta_vae": {"value": "61.6%", "label": "β-VAE score, VAE (β = 1)",
                       "source": "Higgins et al. 2017, Table 1: 64×64, long training"},
    "beta4_beta_vae": {"value": "99.2%", "label": "β-VAE score, β-VAE (β = 4)",
                       "source": "Higgins et al. 2017, Table 1"},
    "tcvae_mig": {"value": "≈ 0.5", "label": "MIG, β-TCVAE",
                  "source": "Chen et al. 2018 (a different model)"},
    "beta4_mig": {"value": "mostly 0–0.4", "label": "MIG, β-VAE over seeds and β",
                  "source": "Locatello et al. 2019: dSprites, 300k steps (read off their plots)"},
}

CLAIMS = claims(
    Claim("rate_falls_with_beta", "the KL (rate) falls at every step up in β",
          lambda m: all(a > c for a, c in zip(_along(m, "kl"), _along(m, "kl")[1:]))),
    Claim("distortion_rises_with_beta", "the reconstruction cost rises at every step up in β",
          lambda m: all(a < c for a, c in zip(_along(m, "recon"), _along(m, "recon")[1:]))),
    Claim("fewer_active_with_beta", "β = 4 keeps no more active coordinates than β = 1",
          lambda m: m["beta4_active"] <= m["beta1_active"]),
    Claim("capacity_on_target", "the capacity objective holds the KL within 15% of its target C",
          lambda m: abs(m["capacity_kl"] - m["capacity_target"]) < 0.15 * m["capacity_target"]),
    Claim("scores_above_chance", "every model's β-VAE score is above chance (0.2 for five factors)",
          lambda m: all(m[k] > 0.3 for k in m if k.endswith("_beta_vae"))),
    Claim("beta4_finds_position", "the β = 4 code carries information about the sprite's position",
          lambda m: m["beta4_position_mi"] > 0.15),
    Claim("beta4_not_separated", "… but has not separated the factors the way the published models do (MIG < 0.2)",
          lambda m: m["beta4_mig"] < 0.2),
)


def tag(beta: float) -> str:
    """The model (and metric) name of a β: ``beta4`` for 4.0."""
    return f"beta{beta:g}"


def _along(m, key: str) -> list[float]:
    betas = sorted(float(k[len("beta"):-len("_" + key)]) for k in m
                   if k.startswith("beta") and k.endswith("_" + key) and k[len("beta"):-len("_" + key)].replace(".", "").isdigit())
    return [m[f"{tag(b)}_{key}"] for b in betas]


def data(b: Budget):
    """The renderer and the training and held-out sprites of budget ``b``: ``(ds, train, test)``
    (``DSprites.sample`` results; the seeds are fixed so every run sees the same images)."""
    ds = DSprites(size=b.size)
    return ds, ds.sample(b.n_train, seed=1), ds.sample(b.n_test, seed=2)


def describe(b: Budget) -> str:
    return (f"VAE with β = {', '.join(f'{v:g}' for v in b.betas)} and controlled capacity (γ = {b.gamma:g}, "
            f"C → {b.capacity:g} nats) on dSprites rendered procedurally at {b.size}×{b.size}, MLP "
            f"{'-'.join(map(str, b.hidden))}, {b.latent_size}-D code, {b.n_train * b.epochs:,} images seen per "
            f"model: held-out reconstruction and KL, active dimensions, β-VAE score, FactorVAE score, MIG.")


@cached
def run(budget="quick", *, seed: int = 0, device=None) -> Run:
    """Train one model per β and the capacity model on ``device``; report each."""
    b, r, device = start(__name__, budget, seed, device)
    ds, train_set, test_set = data(b)
    x_train, x_test = train_set.images, test_set.images
    steps = b.epochs * -(-len(x_train) // b.batch_size)
    variants = {tag(beta): dict(beta=beta) for beta in b.betas}
    variants["capacity"] = dict(capacity=b.capacity, gamma=b.gamma, capacity_steps=max(1, steps // 2))
    for name, kw in variants.items():
        companion.seed_everything(seed)
        model = VAE(VAEConfig(image_shape=tuple(x_train.shape[1:]), latent_size=b.latent_size, hidden=b.hidden, **kw))
        r.histories[name] = fit(model, x_train, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size, seed=seed,
                                progress=False, device=device)
        r.models[name] = model.cpu().eval()
    # every model scored on the same freshly rendered sprites, each rendered once
    r.results["reports"] = dsprites_report(dict(r.models), ds, x_test, points=b.points, mig_samples=b.mig_samples)
    for name, rep in r.results["reports"].items():
        for key in REPORTED:
            r.metrics[f"{name}_{key}"] = rep[key]
        r.metrics[f"{name}_position_mi"] = rep["mi"][:, 3:].max()
    r.metrics["capacity_target"] = b.capacity
    return finish(r)
