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

import companion
from companion.data import load_first
from companion.experiments.core import Claim, Run, cached, claims, finish, start
from companion.metrics import active_units, importance_weighted_log_likelihood, kl_per_dimension, linear_probe
from companion.models import VAE, Autoencoder, AutoencoderConfig, VAEConfig
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

REFERENCES = {
    "vae_z16_binarised_neg_log_px_iw": {"value": 86.76, "label": "VAE, −log p(x) (S = 5,000)",
                                       "source": "Burda et al. 2016, Table 1: dynamically binarised full MNIST, "
                                                 "3,280 epochs"},
    "iwae_k50_neg_log_px": {"value": 84.78, "label": "IWAE, S = 50, −log p(x)",
                            "source": "Burda et al. 2016, Table 1 (same setting)"},
}

CLAIMS = claims(
    Claim("iw_tighter", "for both models the importance-weighted estimate is a tighter bound than the −ELBO",
          lambda m: all(m[f"vae_z{k}_test_neg_log_px_iw"] <= m[f"vae_z{k}_test_neg_elbo"] for k in _sizes(m))),
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


def _sizes(m) -> list[int]:
    return sorted(int(k[len("vae_z"):-len("_test_neg_elbo")]) for k in m
                  if k.startswith("vae_z") and k.endswith("_test_neg_elbo"))


def describe(b: Budget) -> str:
    return (f"VAE (784-{'-'.join(map(str, b.hidden))}, Bernoulli pixels) with {' and '.join(map(str, b.latent_sizes))}-D "
            f"codes, {b.epochs} epochs each: held-out −ELBO ({b.elbo_draws} draws of z), its parts, active units, "
            f"and the importance-weighted estimate of −log p(x) with S = {b.iw_samples:,} on {b.n_eval} digits; "
            f"a {b.collapse_latent}-D VAE with a {'-'.join(map(str, b.collapse_hidden))} decoder, plain, with KL "
            f"annealing and with free bits (κ = {b.free_bits:g}), {b.collapse_epochs} epochs each; prior samples "
            f"through a {'-'.join(map(str, b.ae_hidden))} autoencoder and the VAE, judged by a linear classifier; "
            f"the 16-D VAE on dynamically binarised digits; data: {' or '.join(b.data)} (else mnist-5k).")


@cached
def run(budget="quick", *, seed: int = 0, device=None) -> Run:
    """Train one VAE per latent size on ``device`` (validated on the held-out split each epoch)."""
    b, r, device = start(__name__, budget, seed, device)
    (x_train, y_train), (x_test, _) = load_first(b.data, n_train=b.n_train, n_test=b.n_test)
    x_eval = x_test[:b.n_eval]
    for k in b.latent_sizes:
        _train(b, r, f"z{k}", x_train, b.epochs, seed, device, val=x_test, latent_size=k, hidden=b.hidden)
    for k in b.latent_sizes:
        model = r.models[f"z{k}"]
        torch.manual_seed(seed)
        r.metrics[f"vae_z{k}_test_neg_elbo"] = np.mean([evaluate(model, x_eval)["loss"] for _ in range(b.elbo_draws)])
        terms = evaluate(model, x_eval)
        r.metrics[f"vae_z{k}_test_recon"], r.metrics[f"vae_z{k}_test_kl"] = terms["recon"], terms["kl"]
        r.metrics[f"vae_z{k}_test_neg_log_px_iw"] = -importance_weighted_log_likelihood(
            model, x_eval, k=b.iw_samples).mean().item()
        model.cpu()                                          # explored on the CPU from here on
        r.metrics[f"vae_z{k}_active"] = active_units(model, x_test)
        r.metrics[f"vae_z{k}_active_by_variance"] = active_units(model, x_test, by="variance")
    _collapse(b, r, x_train, x_test, x_eval, seed, device)
    _prior_samples(b, r, x_train, y_train, x_test, seed, device)
    _binarised(b, r, x_train, x_eval, seed, device)
    return finish(r)


def _train(b, r, name: str, x_train, epochs: int, seed: int, device, val=None, **config) -> VAE:
    """A VAE with ``config`` built from ``seed`` and trained on ``device``; kept in ``r`` as ``name``."""
    companion.seed_everything(seed)
    model = VAE(VAEConfig(image_shape=tuple(x_train.shape[1:]), **config))
    r.histories[name] = fit(model, x_train, epochs=epochs, lr=b.lr, batch_size=b.batch_size, val=val, seed=seed,
                            progress=False, device=device)
    r.models[name] = model
    return model


def _collapse(b, r, x_train, x_test, x_eval, seed, device) -> None:
    """The stronger decoder, plain, with KL annealing and with free bits: KL per dimension."""
    steps_per_epoch = -(-len(x_train) // b.batch_size)
    cures = {"plain": {}, "annealed": {"kl_warmup_steps": b.kl_warmup_epochs * steps_per_epoch},
             "free_bits": {"free_bits": b.free_bits}}
    r.metrics["collapse_latent"] = b.collapse_latent
    for name, cure in cures.items():
        model = _train(b, r, f"collapse_{name}", x_train, b.collapse_epochs, seed, device,
                       latent_size=b.collapse_latent, hidden=b.collapse_hidden, **cure)
        r.results[f"collapse_{name}_kl_per_dim"] = kl_per_dimension(model, x_test)
        r.metrics[f"collapse_{name}_active"] = active_units(model, x_test)
        r.metrics[f"collapse_{name}_active_by_variance"] = active_units(model, x_test, by="variance")
        torch.manual_seed(seed)
        terms = evaluate(model, x_eval)                      # the true KL, whatever the training objective
        r.metrics[f"collapse_{name}_neg_elbo"] = terms["recon"] + terms["kl"]
        r.metrics[f"collapse_{name}_kl"] = terms["kl"]


def _judge(classify, images) -> dict[str, float]:
    """Mean top-class probability, classes given ≥ 2 % of the images, and the effective number of
    classes exp(H) of the predicted-label histogram."""
    p = classify.proba(images)
    share = np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
    nz = share[share > 0]
    return {"confidence": float(p.max(1).mean()), "classes": int((share >= 0.02).sum()),
            "effective_classes": float(np.exp(-(nz * np.log(nz)).sum()))}


def _prior_samples(b, r, x_train, y_train, x_test, seed, device) -> None:
    """Decode z ∼ N(0, I) through chapter 1's autoencoder and through the 16-D VAE; judge both."""
    k = max(b.latent_sizes)
    companion.seed_everything(seed)
    ae = Autoencoder(AutoencoderConfig(image_shape=tuple(x_train.shape[1:]), code_size=k, hidden=b.ae_hidden,
                                       out_act="sigmoid"))
    r.histories["ae"] = fit(ae, x_train, epochs=b.epochs, lr=b.ae_lr, batch_size=b.batch_size, seed=seed,
                            progress=False, device=device)
    r.models["ae"] = ae.cpu().eval()
    classify = r.results["classify"] = linear_probe(x_train, y_train)          # pixels → digit, real digits
    z = torch.randn(b.n_prior_samples, k, generator=torch.Generator().manual_seed(seed))
    vae = r.models[f"z{k}"].cpu().eval()
    with torch.no_grad():
        samples = {"vae": vae.decode(z).mean, "ae": ae.decode(z), "real": x_test[:b.n_prior_samples]}
        codes = ae.encode(x_test)
    r.results["prior_samples"] = samples
    for name, images in samples.items():
        for key, v in _judge(classify, images).items():
            r.metrics[f"samples_{name}_{key}"] = v
    r.metrics["ae_code_std"] = float(codes.std(0).mean())             # the AE's codes' spread, per dimension
    r.metrics["ae_code_mean_norm"] = float(codes.mean(0).norm())


def _binarised(b, r, x_train, x_eval, seed, device) -> None:
    """Burda et al.'s setting: dynamically binarised training digits, binarised held-out digits."""
    k = max(b.latent_sizes)
    model = _train(b, r, f"z{k}_binarised", x_train, b.epochs, seed, device, latent_size=k, hidden=b.hidden,
                   binarize=True)
    x_bin = torch.bernoulli(x_eval, generator=torch.Generator().manual_seed(seed))   # one fixed binarisation
    torch.manual_seed(seed)
    r.metrics[f"vae_z{k}_binarised_neg_log_px_iw"] = -importance_weighted_log_likelihood(
        model, x_bin, k=b.iw_samples).mean().item()


#: The setting behind REFERENCES (Burda et al. 2016, §5 and Table 1), for the chapter to say how ours differs:
#: their VAE has one stochastic layer of 50 units and two deterministic layers of 200 tanh units on each side,
#: is trained for 3^i passes at each of 8 learning rates (3,280 passes) on the 60,000 training digits, and is
#: scored with S = 5,000 importance samples on the 10,000 test digits.
BURDA_SETTING = {"latent_size": 50, "hidden": (200, 200), "act": "tanh", "epochs": 3280, "n_train": 60_000,
                 "iw_samples": 5000, "n_test": 10_000,
                 "source": "Burda et al. 2016, §5 (architecture, training schedule, evaluation with S = 5,000)"}
