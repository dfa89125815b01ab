"""Each chapter's headline experiment, one module per chapter, and the registry behind
``python -m companion reproduce NAME``.

>>> from companion.experiments import ch01_autoencoder as experiment
>>> run = experiment.run("quick", seed=0, device="cpu")   # trained models, histories, metrics
>>> run.check()                                          # the chapter's claims hold

See :mod:`companion.experiments.core` for what every module defines. Nothing else in the
companion imports this package; the chapters and the CLI do.
"""
from __future__ import annotations

from companion.experiments import (ch01_autoencoder, ch02_denoising, ch03_sparse, ch04_ksparse,
                                   ch05_contractive, ch06_vae, ch07_beta_vae, ch07_sweep, ch08_vq_vae,
                                   ch09_vq_vae2, ch10_td_vae, ch11_after_the_survey)
from companion.experiments.core import (BUDGETS, EXPERIMENTS, Claim, ClaimFailed, Run, format_table, get,
                                        references_table, register, reproduce, write_json)

for _module in (ch01_autoencoder, ch02_denoising, ch03_sparse, ch04_ksparse, ch05_contractive, ch06_vae,
                ch07_beta_vae, ch07_sweep, ch08_vq_vae, ch09_vq_vae2, ch10_td_vae, ch11_after_the_survey):
    register(_module)

__all__ = ["BUDGETS", "EXPERIMENTS", "Claim", "ClaimFailed", "Run", "format_table", "get", "references_table",
           "register", "reproduce", "write_json"]
