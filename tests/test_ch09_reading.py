"""Chapter 9 (issue 37): the top prior trained for twice as long, which shows why the priors stop
where they do. It starts from the run's own initial weights and shuffles, so up to the budget's
epoch it repeats the run's top prior exactly; and it runs last, inside ``fork_rng``, so the random
draws of the chapter's cells after the run do not depend on it."""
import math

import numpy as np
import pytest
import torch

from companion.experiments import ch09_vq_vae2 as experiment
from companion.experiments.core import RUN_CACHE


@pytest.fixture(autouse=True)
def _train_for_real(monkeypatch):
    """These tests train: a run cache named by the environment is off."""
    monkeypatch.delenv(RUN_CACHE, raising=False)


def test_longer_top_prior_repeats_the_run_up_to_the_budget_then_goes_on():
    b = experiment.BUDGETS["smoke"]
    run = experiment.run("smoke", seed=0)
    h, m = run.histories["top_prior_longer"], run.metrics
    held_out, seen = h.val["bits_per_code"], h.train["bits_per_code"]
    assert len(held_out) == len(seen) == 2 * b.prior_epochs
    # the same start as the run's top prior: the same training curve and held-out bits up to the budget
    assert seen[:b.prior_epochs] == pytest.approx(run.histories["top_prior"].train["bits_per_code"], rel=1e-5)
    assert math.isclose(held_out[b.prior_epochs - 1], m["top_prior_bits_per_code"], rel_tol=1e-5)
    # the metrics are read from that history
    assert m["top_prior_longer_val_best_epoch"] == 1 + int(np.argmin(held_out))
    assert m["top_prior_longer_val_bits_at_budget"] == held_out[b.prior_epochs - 1]
    assert m["top_prior_longer_val_bits_last"] == held_out[-1]
    assert m["top_prior_longer_train_bits_at_budget"] == seen[b.prior_epochs - 1]
    assert m["top_prior_longer_train_bits_last"] == seen[-1]
    claim = experiment.CLAIMS["longer_prior_overfits"]
    assert claim.holds(m) == (held_out[-1] > held_out[b.prior_epochs - 1] and seen[-1] < seen[b.prior_epochs - 1])


def test_longer_top_prior_leaves_the_random_generators_as_the_run_left_them(monkeypatch):
    experiment.run("smoke", seed=0)
    after = torch.random.get_rng_state()
    from companion.experiments import core
    real_fit = core.fit                          # what Run.train trains with

    def fit_that_draws(*args, **kwargs):       # the longer prior alone gets a validation set
        history = real_fit(*args, **kwargs)
        if kwargs.get("val") is not None:
            torch.rand(1000)                   # any draw in that block must be forgotten
        return history

    monkeypatch.setattr(core, "fit", fit_that_draws)
    experiment.run("smoke", seed=0)
    assert torch.equal(torch.random.get_rng_state(), after)
