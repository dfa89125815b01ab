"""Chapter 6's experiment: VAEs with 2-D and 16-D codes on digits.

The package's default VAE (Bernoulli pixels, a 784-400 MLP encoder and a mirrored decoder)
trained by ``fit`` with its default learning rate and batch size. Measured on held-out
digits: the negative ELBO (averaged over draws of z), its reconstruction and KL parts, the
importance-weighted estimate of −log p(x), and the number of active latent dimensions
(:func:`companion.metrics.active_units`: average KL above 0.1 nats).

Three more studies. **Posterior collapse:** a VAE with a stronger decoder (two hidden layers) and
a 32-D code, plain, with KL annealing and with free bits, measured by the KL of each dimension.
**Why an autoencoder is not generative:** codes drawn from N(0, I) decoded by chapter 1's
autoencoder (same code size) and by the VAE, judged by a classifier fitted on real digits.
**Like for like with Burda et al.:** the 16-D VAE trained on dynamically binarised digits and
scored on binarised held-out digits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from companion.experiments.core import Claim, Digits, Run, claims, dashed, experiment_run, name_of, references
from companion.metrics import active_units, importance_weighted_log_likelihood, kl_per_dimension, linear_probe
from companion.models import VAE, Autoencoder, AutoencoderConfig, VAEConfig
from companion.models.base import model_device
from companion.train import evaluate, steps_per_epoch

NAME = "vae"
CHAPTER = "chapters/06_vae"


@dataclass(frozen=True)
class Budget(Digits):
    latent_sizes: tuple[int, ...] = (2, 16)
    hidden: tuple[int, ...] = VAEConfig.hidden    # the package's defaults: what a reader's own VAE gets
    epochs: int = 30
    lr: float = 1e-3                              # fit's default
    batch_size: int = 128
    n_eval: int = 300                 # held-out digits for the bounds
    elbo_draws: int = 10              # draws of z averaged in the −ELBO
    iw_samples: int = 1000            # S, the samples of the importance-weighted bound
    # posterior collapse: a stronger decoder, plain and with each cure
    collapse_latent: int = 32
    collapse_hidden: tuple[int, ...] = (512, 512)
    collapse_epochs: int = 20
    free_bits: float = 0.25           # κ, nats per dimension
    kl_warmup_epochs: int = 10        # the KL's weight rises from 0 to 1 over these epochs
    # prior samples through chapter 1's autoencoder and through the VAE
    ae_hidden: tuple[int, ...] = (256,)
    ae_lr: float = 2e-3
    n_prior_samples: int = 1000


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist", "fashion-mnist"), epochs=50, n_eval=1000),
    "smoke": Budget(n_train=256, n_test=128, hidden=(32,), epochs=1, n_eval=32, elbo_draws=2, iw_samples=8,
                    collapse_latent=4, collapse_hidden=(16, 16), collapse_epochs=1, kl_warmup_epochs=1,
                    ae_hidden=(16,), n_prior_samples=50),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("iw_tighter", "for both models the importance-weighted estimate is a tighter bound than the −ELBO",
          lambda m: all(m.value("test_neg_log_px_iw", model="vae", z=k) <= bound
                        for k, bound in m.series("test_neg_elbo", over="z", model="vae").items())),
    Claim("bigger_code_better_bound", "the 16-D VAE has a lower −ELBO than the 2-D one",
          lambda m: m["vae_z16_test_neg_elbo"] < m["vae_z2_test_neg_elbo"]),
    Claim("strong_decoder_collapses", "with the stronger decoder fewer than half of the 32 dimensions carry 0.1 nats",
          lambda m: m["collapse_plain_active"] < m["collapse_latent"] / 2),
    Claim("annealing_helps", "KL annealing leaves more dimensions active and a lower −ELBO than the plain objective",
          lambda m: m["collapse_annealed_active"] > m["collapse_plain_active"]
          and m["collapse_annealed_neg_elbo"] < m["collapse_plain_neg_elbo"]),
    Claim("free_bits_uses_every_dimension", "with free bits every dimension carries at least 0.1 nats",
          lambda m: m["collapse_free_bits_active"] == m["collapse_latent"]),
    Claim("vae_samples_are_digits", "decoded prior samples: the VAE's cover more classes, and are classified more "
                                    "confidently, than the autoencoder's",
          lambda m: m["samples_vae_effective_classes"] > m["samples_ae_effective_classes"]
          and m["samples_vae_confidence"] > m["samples_ae_confidence"]),
)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train one VAE per latent size on the run's device (validated on the held-out split each epoch)."""
    (x_train, y_train), (x_test, _) = b.load()
    x_eval = x_test[:b.n_eval]
    for k in b.latent_sizes:
        _train(b, r, name_of(z=k), x_train, b.epochs, val=x_test, latent_size=k, hidden=b.hidden)
    for k in b.latent_sizes:
        model, g = r.models[name_of(z=k)], torch.Generator().manual_seed(r.seed)      # the draws of z
        r.record("test_neg_elbo", np.mean([evaluate(model, x_eval, generator=g)["loss"] for _ in range(b.elbo_draws)]),
                 model="vae", z=k)
        terms = evaluate(model, x_eval, generator=g)
        r.record("test_recon", terms["recon"], model="vae", z=k)
        r.record("test_kl", terms["kl"], model="vae", z=k)
        r.record("test_neg_log_px_iw", -importance_weighted_log_likelihood(model, x_eval, k=b.iw_samples,
                                                                           generator=g).mean(), model="vae", z=k)
        r.record("active", active_units(model, x_test), model="vae", z=k)
        r.record("active_by_variance", active_units(model, x_test, by="variance"), model="vae", z=k)
    _collapse(b, r, x_train, x_test, x_eval, r.seed)
    _prior_samples(b, r, x_train, y_train, x_test, r.seed)
    _binarised(b, r, x_train, x_eval, r.seed)


def _train(b, r, name: str, x_train, epochs: int, val=None, **config) -> VAE:
    """A VAE with ``config``, trained in ``r`` as ``name``."""
    config = VAEConfig(image_shape=tuple(x_train.shape[1:]), **config)
    return r.train(name, lambda: VAE(config), x_train, epochs=epochs, lr=b.lr, batch_size=b.batch_size, val=val)


def _collapse(b, r, x_train, x_test, x_eval, seed) -> None:
    """The stronger decoder, plain, with KL annealing and with free bits: KL per dimension."""
    cures = {"plain": {}, "annealed": {"kl_warmup_steps": b.kl_warmup_epochs * steps_per_epoch(len(x_train),
                                                                                                b.batch_size)},
             "free_bits": {"free_bits": b.free_bits}}
    r.record("collapse_latent", b.collapse_latent)
    for cure, kw in cures.items():
        model = _train(b, r, name_of(model="collapse", cure=cure), x_train, b.collapse_epochs,
                       latent_size=b.collapse_latent, hidden=b.collapse_hidden, **kw)
        r.results[f"collapse_{cure}_kl_per_dim"] = kl_per_dimension(model, x_test)
        r.record("active", active_units(model, x_test), model="collapse", cure=cure)
        r.record("active_by_variance", active_units(model, x_test, by="variance"), model="collapse", cure=cure)
        terms = evaluate(model, x_eval, generator=torch.Generator().manual_seed(seed))   # the true KL, whatever
        r.record("neg_elbo", terms["recon"] + terms["kl"], model="collapse", cure=cure)    # the training objective
        r.record("kl", terms["kl"], model="collapse", cure=cure)


def _judge(classify, images) -> dict[str, float]:
    """Mean top-class probability, classes given ≥ 2 % of the images, and the effective number of
    classes exp(H) of the predicted-label histogram."""
    p = classify.proba(images)
    share = np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
    nz = share[share > 0]
    return {"confidence": float(p.max(1).mean()), "classes": int((share >= 0.02).sum()),
            "effective_classes": float(np.exp(-(nz * np.log(nz)).sum()))}


def _prior_samples(b, r, x_train, y_train, x_test, seed) -> None:
    """Decode z ∼ N(0, I) through chapter 1's autoencoder and through the 16-D VAE; judge both."""
    k = max(b.latent_sizes)
    ae = r.train("ae", lambda: Autoencoder(AutoencoderConfig(image_shape=tuple(x_train.shape[1:]), code_size=k,
                                                             hidden=b.ae_hidden, out_act="sigmoid")),
                 x_train, epochs=b.epochs, lr=b.ae_lr, batch_size=b.batch_size)
    classify = r.results["classify"] = linear_probe(x_train, y_train)          # pixels → digit, real digits
    z = torch.randn(b.n_prior_samples, k, generator=torch.Generator().manual_seed(seed))
    vae = r.models[name_of(z=k)]
    with torch.no_grad():
        samples = {name: m.decode_mean(z.to(model_device(m))).cpu() for name, m in (("vae", vae), ("ae", ae))}
        samples["real"] = x_test[:b.n_prior_samples]
        codes = ae.code(x_test.to(model_device(ae))).cpu()                # (N, k), in one pass as before
    r.results["prior_samples"] = samples
    for name, images in samples.items():
        for key, v in _judge(classify, images).items():
            r.record(key, v, model="samples", decoder=name)
    r.record("code_std", codes.std(0).mean(), model="ae")             # the AE's codes' spread, per dimension
    r.record("code_mean_norm", codes.mean(0).norm(), model="ae")


def _binarised(b, r, x_train, x_eval, seed) -> None:
    """Burda et al.'s setting: dynamically binarised training digits, binarised held-out digits."""
    k = max(b.latent_sizes)
    model = _train(b, r, name_of(z=k, data="binarised"), x_train, b.epochs, latent_size=k, hidden=b.hidden,
                   binarize=True)
    x_bin = torch.bernoulli(x_eval, generator=torch.Generator().manual_seed(seed))   # one fixed binarisation
    r.record("binarised_neg_log_px_iw", -importance_weighted_log_likelihood(
        model, x_bin, k=b.iw_samples, generator=torch.Generator().manual_seed(seed)).mean(), model="vae", z=k)


#: The setting behind REFERENCES (Burda et al. 2016, §5 and Table 1), for the chapter to say how ours differs:
#: their VAE has one stochastic layer of 50 units and two deterministic layers of 200 tanh units on each side,
#: is trained for 3^i passes at each of 8 learning rates (3,280 passes) on the 60,000 training digits, and is
#: scored with S = 5,000 importance samples on the 10,000 test digits.
BURDA_SETTING = {"latent_size": 50, "hidden": (200, 200), "act": "tanh", "epochs": 3280, "n_train": 60_000,
                 "iw_samples": 5000, "n_test": 10_000,
                 "source": "Burda et al. 2016, §5 (architecture, training schedule, evaluation with S = 5,000)"}


def describe(b: Budget) -> str:
    return (f"VAE (784-{dashed(b.hidden)}, Bernoulli pixels) with {' and '.join(map(str, b.latent_sizes))}-D "
            f"codes, {b.epochs} epochs each: held-out −ELBO ({b.elbo_draws} draws of z), its parts, active units, "
            f"and the importance-weighted estimate of −log p(x) with S = {b.iw_samples:,} on {b.n_eval} digits; "
            f"a {b.collapse_latent}-D VAE with a {dashed(b.collapse_hidden)} decoder, plain, with KL "
            f"annealing and with free bits (κ = {b.free_bits:g}), {b.collapse_epochs} epochs each; prior samples "
            f"through a {dashed(b.ae_hidden)} autoencoder and the VAE, judged by a linear classifier; "
            f"the 16-D VAE on dynamically binarised digits; {b.data_text()}.")
