"""Chapter 7's sweep: which levers make β > 1 separate x from y, over several seeds.

Not run by the chapter (a few minutes): ``python -m companion reproduce beta-vae-sweep
--json companion/experiments/records/beta_vae_sweep.json`` writes the record the chapter
quotes (:func:`record`), which ships with the package. For each
setting of the data, each β and each seed it trains chapter 7's model (same architecture,
training length and metrics as :mod:`ch07_beta_vae`) and records MIG and the active
coordinates. The settings are the levers the chapter discusses:

* ``dsprites``: all five factors of dSprites (3 shapes, 6 scales, 40 orientations, x, y);
* ``symmetric``: one unrotated ellipse at one scale, x and y over the same 32 positions;
* ``asymmetric``: the same, with y over the middle half only (the chapter's data).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from companion.experiments import ch07_beta_vae as base
from companion.experiments.core import Claim, Run, claims, experiment_run, listed, name_of, references
from companion.metrics import dsprites_report

NAME = "beta-vae-sweep"
CHAPTER = "chapters/07_beta_vae"
RECORD = Path(__file__).parent / "records" / "beta_vae_sweep.json"   # the chapter reads it instead of running

SETTINGS = {
    "dsprites": dict(shape=None, scale=None, orientation=None, pos_y=(0, 32)),
    "symmetric": dict(pos_y=(0, 32)),
    "asymmetric": dict(),
}


@dataclass(frozen=True)
class Budget:
    model: base.Budget = base.Budget(capacity=None, tc_weight=None)   # every field but the data and β
    settings: tuple[str, ...] = tuple(SETTINGS)
    betas: tuple[float, ...] = (1.0, 16.0)
    seeds: int = 3                            # seeds seed … seed + seeds − 1


BUDGETS = {
    "quick": Budget(),
    "full": Budget(betas=(1.0, 4.0, 16.0), seeds=5),
    "smoke": Budget(model=base.BUDGETS["smoke"], settings=("asymmetric",), betas=(1.0, 4.0), seeds=2),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json


def separated(m, setting: str = "asymmetric") -> list[bool]:
    """Per seed: does the largest β separate the factors (:func:`ch07_beta_vae.separates`)?
    (Empty when the record has no such setting.)"""
    top = m.series("mig", over="seed", setting=setting, beta=m["largest_beta"])
    one = m.series("mig", over="seed", setting=setting, beta=1)
    return [base.separates(top[s], one[s]) for s in top]


CLAIMS = claims(
    Claim("asymmetric_separates_every_seed", "on the asymmetric grid the largest β separates the factors in every "
                                             "seed (MIG ≥ 0.15 and ≥ twice β = 1's)",
          lambda m: all(separated(m, "asymmetric"))),
    Claim("symmetric_does_not", "with x and y exchangeable it does so in fewer seeds",
          lambda m: sum(separated(m, "symmetric")) < sum(separated(m, "asymmetric"))),
    Claim("dsprites_does_not", "and on all of dSprites in fewer seeds too",
          lambda m: sum(separated(m, "dsprites")) < sum(separated(m, "asymmetric"))),
)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train every (setting, β, seed) model on the run's device; record MIG and active coordinates."""
    for setting in b.settings:
        mb = dataclasses.replace(b.model, **SETTINGS[setting], betas=b.betas)
        g, train_set, test_set = base.data(mb)
        for s in range(b.seeds):
            models = {beta: base.train(r, mb, name_of(setting=setting, beta=beta, seed=s), train_set.images,
                                       dict(beta=beta), seed=r.seed + s) for beta in b.betas}
            reports = dsprites_report(models, g, test_set.images, points=mb.points, mig_samples=mb.mig_samples)
            for beta, rep in reports.items():
                r.record("mig", rep["mig"], setting=setting, beta=beta, seed=s)
                r.record("active", rep["active"], setting=setting, beta=beta, seed=s)
    r.record("seeds", b.seeds)
    r.record("largest_beta", max(b.betas))


def record() -> dict:
    """The saved record of the quick sweep (what ``reproduce`` wrote), as a dict; its numbers
    are read with :func:`companion.experiments.core.metrics_of`."""
    return json.loads(RECORD.read_text())


def describe(b: Budget) -> str:
    return (f"chapter 7's β-VAE ({b.model.epochs} epochs of {b.model.n_train:,} images per model) on "
            f"{', '.join(b.settings)} data, β = {listed(b.betas)}, {b.seeds} seeds each: MIG "
            f"and active coordinates of every model.")
