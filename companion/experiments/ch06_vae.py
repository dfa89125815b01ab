"""Chapter 6's experiment: VAEs with 2-D and 16-D codes on digits.

The package's default VAE (Bernoulli pixels, a 784-400 MLP encoder and a mirrored decoder)
trained by ``fit`` with its default learning rate and batch size. Measured on held-out
digits: the negative ELBO (averaged over draws of z), its reconstruction and KL parts, the
importance-weighted estimate of −log p(x), and the number of active latent dimensions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import companion
from companion.data import load_first
from companion.experiments.core import Claim, Run, cached, claims, finish, start
from companion.metrics import importance_weighted_log_likelihood
from companion.models import VAE, VAEConfig
from companion.train import evaluate, fit

NAME = "vae"
CHAPTER = "chapters/06_vae"


@dataclass(frozen=True)
class Budget:
    data: tuple[str, ...] = ("mnist-5k",)
    n_train: int | None = None
    n_test: int | None = None
    latent_sizes: tuple[int, ...] = (2, 16)
    hidden: tuple[int, ...] = VAEConfig.hidden    # the package's defaults: what a reader's own VAE gets
    epochs: int = 30
    lr: float = 1e-3                              # fit's default
    batch_size: int = 128
    n_eval: int = 300                 # held-out digits for the bounds
    elbo_draws: int = 10              # draws of z averaged in the −ELBO
    iw_samples: int = 1000            # k of the importance-weighted bound


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist", "fashion-mnist"), epochs=50, n_eval=1000),
    "smoke": Budget(n_train=256, n_test=128, hidden=(32,), epochs=1, n_eval=32, elbo_draws=2, iw_samples=8),
}

REFERENCES = {
    "pytorch_example_neg_elbo": {"value": "≈ 104–107", "label": "PyTorch's example VAE, 20-D, 10 epochs: −ELBO",
                                 "source": "full MNIST, 60,000 training digits, grey levels (the example's "
                                           "printed test loss)"},
    "vae_z16_test_neg_log_px_iw": {"value": 86.76, "label": "VAE, −log p(x) (k = 5,000)",
                                       "source": "Burda et al. 2016, Table 1: dynamically binarised full MNIST, "
                                                 "3,280 epochs (a different setting)"},
    "iwae_k50_neg_log_px": {"value": 84.78, "label": "IWAE, k = 50, −log p(x)",
                            "source": "Burda et al. 2016, Table 1 (same setting)"},
}

CLAIMS = claims(
    Claim("iw_tighter", "for both models the importance-weighted estimate is a tighter bound than the −ELBO",
          lambda m: all(m[f"vae_z{k}_test_neg_log_px_iw"] <= m[f"vae_z{k}_test_neg_elbo"] for k in _sizes(m))),
    Claim("bigger_code_better_bound", "the 16-D VAE has a lower −ELBO than the 2-D one",
          lambda m: m["vae_z16_test_neg_elbo"] < m["vae_z2_test_neg_elbo"]),
)


def _sizes(m) -> list[int]:
    return sorted(int(k[len("vae_z"):-len("_test_neg_elbo")]) for k in m
                  if k.startswith("vae_z") and k.endswith("_test_neg_elbo"))


def describe(b: Budget) -> str:
    return (f"VAE (784-{'-'.join(map(str, b.hidden))}, Bernoulli pixels) with {' and '.join(map(str, b.latent_sizes))}-D "
            f"codes, {b.epochs} epochs each: held-out −ELBO ({b.elbo_draws} draws of z), its parts, active units, "
            f"and the importance-weighted estimate of −log p(x) with k = {b.iw_samples:,} on {b.n_eval} digits; "
            f"data: {' or '.join(b.data)} (else mnist-5k).")


@cached
def run(budget="quick", *, seed: int = 0, device=None) -> Run:
    """Train one VAE per latent size on ``device`` (validated on the held-out split each epoch)."""
    b, r, device = start(__name__, budget, seed, device)
    (x_train, _), (x_test, _) = load_first(b.data, n_train=b.n_train, n_test=b.n_test)
    x_eval = x_test[:b.n_eval]
    for k in b.latent_sizes:
        companion.seed_everything(seed)
        model = VAE(VAEConfig(image_shape=tuple(x_train.shape[1:]), latent_size=k, hidden=b.hidden))
        r.histories[f"z{k}"] = fit(model, x_train, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size, val=x_test,
                                   seed=seed, progress=False, device=device)
        r.models[f"z{k}"] = model
    for k in b.latent_sizes:
        model = r.models[f"z{k}"]
        torch.manual_seed(seed)
        r.metrics[f"vae_z{k}_test_neg_elbo"] = np.mean([evaluate(model, x_eval)["loss"] for _ in range(b.elbo_draws)])
        terms = evaluate(model, x_eval)
        r.metrics[f"vae_z{k}_test_recon"], r.metrics[f"vae_z{k}_test_kl"] = terms["recon"], terms["kl"]
        r.metrics[f"vae_z{k}_test_neg_log_px_iw"] = -importance_weighted_log_likelihood(
            model, x_eval, k=b.iw_samples).mean().item()
        with torch.no_grad():
            mu, _ = model.cpu().posterior_params(x_test)
        r.metrics[f"vae_z{k}_active"] = int((mu.var(dim=0) > 0.01).sum())
    return finish(r)
