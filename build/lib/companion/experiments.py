"""Reproducible headline experiments, one per chapter, behind ``python -m companion reproduce``.

Each :class:`Experiment` has a ``quick`` budget (what the chapter executes, about a minute on
a 2-core CPU) and a ``full`` budget (longer, closer to the papers), reports flat metric
names such as ``ae_test_mse_k2``, and carries the published numbers it is compared with.

Every training helper takes ``device`` (where to train, as :func:`companion.get_device`
names it) and returns its models on the CPU, ready to explore in a chapter.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

import companion
from companion.data import DatasetUnavailable, load
from companion.metrics import principal_angles, reconstruction_error
from companion.models import PCA, Autoencoder, AutoencoderConfig
from companion.models.base import model_device
from companion.train import fit

BUDGETS = ("quick", "full")


@dataclass
class Experiment:
    """A registered experiment: ``run(budget, device)`` returns ``{metric name: number}``; it
    trains and evaluates on ``device`` (``None``: the CPU)."""

    name: str
    description: str
    run: Callable[[str, torch.device | None], dict[str, float]]
    reference: dict[str, dict] = field(default_factory=dict)
    chapter: str = ""


EXPERIMENTS: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    if exp.name in EXPERIMENTS:
        raise ValueError(f"experiment {exp.name!r} is registered twice")
    EXPERIMENTS[exp.name] = exp
    return exp


def reproduce(name: str, budget: str = "quick", json_path: str | Path | None = None, *,
              device: str | torch.device | None = None) -> dict:
    """Run experiment ``name`` with ``budget`` on ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``;
    default the CPU) and return (and optionally write) its record:
    ``{"experiment", "budget", "device", "seconds", "metrics", "reference"}``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(sorted(EXPERIMENTS))}")
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    exp = EXPERIMENTS[name]
    device = companion.get_device(device if device is not None else "cpu")
    start = time.perf_counter()
    metrics = exp.run(budget, device)
    record = {"experiment": name, "budget": budget, "device": str(device),
              "seconds": round(time.perf_counter() - start, 2),
              "metrics": {k: float(v) for k, v in metrics.items()}, "reference": exp.reference}
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def format_table(record: dict) -> str:
    """The metrics of a record as a plain-text table, published numbers beside ours."""
    rows = [("metric", "ours", "published", "source")]
    for k, v in record["metrics"].items():
        ref = record["reference"].get(k)
        rows.append((k, f"{v:.4g}", _published(ref["value"]) if ref else "", ref["source"] if ref else ""))
    for k, ref in record["reference"].items():
        if k not in record["metrics"]:
            rows.append((k, "", _published(ref["value"]), ref["source"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    where = f", {record['device']}" if "device" in record else ""
    head = f"{record['experiment']} ({record['budget']} budget{where}, {record['seconds']:.1f} s)"
    return head + "\n" + "\n".join(lines)


def _published(value) -> str:
    """A published number, or a range such as ``"0–0.4"`` read off a paper's figure."""
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


# ------------------------------------------------------------------ chapter 1: autoencoder

def ae_vs_pca(x_train: torch.Tensor, x_test: torch.Tensor, code_sizes: Sequence[int], *,
              hidden: Sequence[int] = (256,), epochs: int = 30, lr: float = 2e-3,
              batch_size: int = 128, seed: int = 0, progress: bool = False, device=None) -> dict[int, dict]:
    """Held-out squared error per image of a non-linear autoencoder and of PCA, per code size.

    The autoencoder is an MLP (``hidden`` mirrored), ReLU hidden units, sigmoid outputs and
    the MSE loss; PCA is fitted on the same training images. Returns
    ``{k: {"ae": error, "pca": error, "model": trained autoencoder}}``.
    """
    results = {}
    for k in code_sizes:
        companion.seed_everything(seed)
        model = Autoencoder(AutoencoderConfig(image_shape=tuple(x_train.shape[1:]), code_size=k,
                                              hidden=tuple(hidden), out_act="sigmoid"))
        fit(model, x_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress, device=device)
        pca = PCA(k).fit(x_train)
        results[k] = {"ae": reconstruction_error(model, x_test), "pca": reconstruction_error(pca, x_test),
                      "model": model.cpu()}
    return results


def linear_ae_vs_pca(x_train: torch.Tensor, code_size: int, *, epochs: int = 200, lr: float = 1e-2,
                     batch_size: int = 500, seed: int = 0, progress: bool = False, device=None) -> dict:
    """Train a linear autoencoder with MSE and measure the principal angles between the
    span of its decoder weights and the top-``code_size`` PCA subspace.

    Returns ``{"angles": degrees (ascending), "model": ..., "pca": ...}``.
    """
    companion.seed_everything(seed)
    model = Autoencoder(AutoencoderConfig(image_shape=tuple(x_train.shape[1:]), code_size=code_size,
                                          hidden=(), linear=True))
    fit(model, x_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress, device=device)
    pca = PCA(code_size).fit(x_train)
    w = model.decoder[0][1].weight.detach().cpu()  # (d, k): the decoder's columns span its image
    return {"angles": principal_angles(w, pca.components), "model": model.cpu(), "pca": pca}


def _run_autoencoder(budget: str, device=None) -> dict[str, float]:
    if budget == "quick":
        x_train, _ = load("mnist-5k", "train")
        x_test, _ = load("mnist-5k", "test")
        hidden, epochs = (256,), 30
    else:
        try:
            x_train, _ = load("mnist", "train")
            x_test, _ = load("mnist", "test")
        except DatasetUnavailable:
            print("full MNIST is not on this machine: running the full budget on mnist-5k")
            x_train, _ = load("mnist-5k", "train")
            x_test, _ = load("mnist-5k", "test")
        hidden, epochs = (1000, 500, 250), 50
    metrics = {}
    for k, r in ae_vs_pca(x_train, x_test, (2, 16, 30), hidden=hidden, epochs=epochs, device=device).items():
        metrics[f"ae_test_mse_k{k}"] = r["ae"]
        metrics[f"pca_test_mse_k{k}"] = r["pca"]
    lin = linear_ae_vs_pca(x_train, 16, epochs=200 if budget == "quick" else 400, device=device)
    metrics["linear_ae_max_angle_deg_k16"] = float(lin["angles"].max())
    return metrics


register(Experiment(
    name="autoencoder",
    chapter="chapters/01_autoencoder",
    description="MLP autoencoder vs PCA: held-out squared error per image for code sizes 2, 16, 30; "
                "largest principal angle between a linear autoencoder's subspace and PCA's (k = 16).",
    run=_run_autoencoder,
    reference={
        "ae_test_mse_k30": {"value": 3.00, "source": "Hinton & Salakhutdinov 2006, Fig. 2B: 784-1000-500-"
                            "250-30 autoencoder, full MNIST test set, average squared error per image"},
        "pca_test_mse_k30": {"value": 13.87, "source": "Hinton & Salakhutdinov 2006, Fig. 2B: 30-D PCA"},
        "linear_ae_max_angle_deg_k16": {"value": 0.0, "source": "Baldi & Hornik 1989: the optimal linear "
                                        "autoencoder spans the principal subspace exactly"},
    },
))


# ------------------------------------------------------- chapter 2: denoising autoencoder

def corruption_curve(models: dict, x_test: torch.Tensor, levels: Sequence[float], *, kind: str = "masking",
                     seed: int = 0) -> dict[str, list[float]]:
    """Held-out squared error per image against the *clean* digits, for inputs corrupted at
    each level: for each model (its reconstruction of x̃) and for x̃ itself (``"input"``).

    The same corrupted copies (fixed by ``seed``) are given to every model.
    """
    from companion.data.corrupt import corrupt
    from companion.metrics.reconstruction import reconstruction_error

    out = {"input": [], **{name: [] for name in models}}
    for i, level in enumerate(levels):
        x_tilde = corrupt(x_test, kind, level, generator=torch.Generator().manual_seed(seed + i))
        out["input"].append(((x_tilde - x_test) ** 2).flatten(1).sum(1).mean().item())
        for name, model in models.items():
            out[name].append(reconstruction_error(model, x_tilde, target=x_test))
    return out


def dae_vs_ae(x_train: torch.Tensor, *, noise: str = "masking", noise_level: float = 0.5,
              code_size: int = 32, hidden: Sequence[int] = (256,), epochs: int = 30, lr: float = 2e-3,
              seed: int = 0, progress: bool = False, device=None) -> dict:
    """Train a plain autoencoder and a denoising one with the same architecture (sigmoid
    hidden units, sigmoid outputs, squared error) and the same seed; return both."""
    from companion.models import DenoisingAutoencoder, DenoisingAutoencoderConfig

    shape = tuple(x_train.shape[1:])
    common = dict(image_shape=shape, code_size=code_size, hidden=tuple(hidden), act="sigmoid", out_act="sigmoid")
    companion.seed_everything(seed)
    ae = Autoencoder(AutoencoderConfig(**common))
    h_ae = fit(ae, x_train, epochs=epochs, lr=lr, seed=seed, progress=progress, device=device)
    companion.seed_everything(seed)
    dae = DenoisingAutoencoder(DenoisingAutoencoderConfig(**common, noise=noise, noise_level=noise_level))
    h_dae = fit(dae, x_train, epochs=epochs, lr=lr, seed=seed, progress=progress, device=device)
    return {"ae": ae.cpu(), "dae": dae.cpu(), "history_ae": h_ae, "history_dae": h_dae}


def filter_roughness(weight: torch.Tensor, image_shape: Sequence[int]) -> float:
    """Median over first-layer filters of Σ(differences of neighbouring pixels)² / Σ w².

    Smooth, stroke-like filters score low; filters dominated by pixel noise score high.
    """
    w = weight.detach().reshape(len(weight), *image_shape[-2:])
    dy = (w[:, 1:, :] - w[:, :-1, :]).pow(2).sum((1, 2))
    dx = (w[:, :, 1:] - w[:, :, :-1]).pow(2).sum((1, 2))
    return ((dx + dy) / w.pow(2).sum((1, 2)).clamp_min(1e-12)).median().item()


def _small_or_full(budget: str, full: Sequence[str] = ("mnist",)):
    """(train, test) splits: mnist-5k for the quick budget; for the full budget the first of
    ``full`` whose files are on this machine, else mnist-5k (and it says so)."""
    if budget == "full":
        for name in full:
            try:
                return load(name, "train"), load(name, "test")
            except DatasetUnavailable:
                continue
        print(f"none of {', '.join(full)} is on this machine: running the full budget on mnist-5k")
    return load("mnist-5k", "train"), load("mnist-5k", "test")


def _run_denoising(budget: str, device=None) -> dict[str, float]:
    from companion.metrics import encode_all, linear_probe_accuracy

    (x_train, y_train), (x_test, y_test) = _small_or_full(budget)
    r = dae_vs_ae(x_train, epochs=30 if budget == "quick" else 100, device=device)
    curve = corruption_curve({"ae": r["ae"], "dae": r["dae"]}, x_test, [0.5])
    metrics = {"input_test_mse_masking50": curve["input"][0], "ae_test_mse_masking50": curve["ae"][0],
               "dae_test_mse_masking50": curve["dae"][0]}
    metrics["dae_error_reduction_masking50"] = 1 - curve["dae"][0] / curve["ae"][0]
    for name in ("ae", "dae"):
        m = r[name]
        metrics[f"{name}_linear_probe_acc"] = linear_probe_accuracy(encode_all(m, x_train), y_train,
                                                                    encode_all(m, x_test), y_test)
        metrics[f"{name}_filter_roughness"] = filter_roughness(m.encoder[1].weight, x_train.shape[1:])
    metrics["pixels_linear_probe_acc"] = linear_probe_accuracy(x_train, y_train, x_test, y_test)
    return metrics


register(Experiment(
    name="denoising",
    chapter="chapters/02_denoising_autoencoder",
    description="Denoising vs plain autoencoder (784-256-32, sigmoid units) trained with 50% masking noise: "
                "held-out error against clean digits, linear probes, filter roughness.",
    run=_run_denoising,
    reference={},
))


# ---------------------------------------------------------- chapter 3: sparse autoencoder

def sparse_sweep(x_train: torch.Tensor, betas: Sequence[float], *, rho: float = 0.05, code_size: int = 196,
                 epochs: int = 40, lr: float = 5e-3, seed: int = 0, progress: bool = False, device=None) -> dict[float, dict]:
    """Train one :class:`SparseAutoencoder` per β (same seed, same everything else).

    Returns ``{beta: {"model": ..., "history": ...}}``.
    """
    from companion.models import SparseAutoencoder, SparseAutoencoderConfig

    out = {}
    for beta in betas:
        companion.seed_everything(seed)
        model = SparseAutoencoder(SparseAutoencoderConfig(image_shape=tuple(x_train.shape[1:]),
                                                          code_size=code_size, rho=rho, beta=beta))
        history = fit(model, x_train, epochs=epochs, lr=lr, seed=seed, progress=progress, device=device)
        out[beta] = {"model": model.cpu(), "history": history}
    return out


def _run_sparse(budget: str, device=None) -> dict[str, float]:
    from companion.metrics import encode_all, linear_probe_accuracy

    (x_train, y_train), (x_test, y_test) = _small_or_full(budget)
    sweep = sparse_sweep(x_train, (0.0, 3.0), epochs=40 if budget == "quick" else 100, device=device)
    metrics = {}
    for beta, r in sweep.items():
        m, tag = r["model"], f"beta{beta:g}"
        m.eval()
        with torch.no_grad():
            rho_hat = m.mean_activations(x_test.to(model_device(m)))[0].cpu()
        metrics[f"sae_{tag}_mean_rho_hat"] = rho_hat.mean().item()
        metrics[f"sae_{tag}_test_mse"] = reconstruction_error(m, x_test)
        metrics[f"sae_{tag}_linear_probe_acc"] = linear_probe_accuracy(encode_all(m, x_train), y_train,
                                                                       encode_all(m, x_test), y_test)
    return metrics


register(Experiment(
    name="sparse",
    chapter="chapters/03_sparse_autoencoder",
    description="Sparse autoencoder (196 sigmoid units, ρ = 0.05) with β = 0 and β = 3: mean activation, "
                "held-out error, linear probe.",
    run=_run_sparse,
    reference={"sae_beta3_mean_rho_hat": {"value": 0.05, "source": "the target ρ = 0.05 of Ng's sparse "
                                          "autoencoder notes (the penalty's fixed point)"}},
))


# ------------------------------------------------------- chapter 4: k-sparse autoencoder

def dead_units(codes: torch.Tensor) -> int:
    """Units that are zero for every row of ``codes`` (N, m): never selected by the top-k."""
    return int(((codes != 0).sum(dim=0) == 0).sum().item())


def train_ksparse(x_train: torch.Tensor, k: int, *, code_size: int = 500, k_start: int | None = None,
                  epochs: int = 30, lr: float = 3e-3, batch_size: int = 128, seed: int = 0,
                  progress: bool = False, device=None):
    """One :class:`KSparseAutoencoder` with the data-aware initialisation; if ``k_start`` is
    given, k is annealed from it to ``k`` over the first half of training. Returns the model."""
    from companion.models import KSparseAutoencoder, KSparseAutoencoderConfig

    steps = epochs * -(-len(x_train) // batch_size)
    companion.seed_everything(seed)
    model = KSparseAutoencoder(KSparseAutoencoderConfig(
        image_shape=tuple(x_train.shape[1:]), code_size=code_size, k=k, k_start=k_start,
        anneal_steps=steps // 2 if k_start is not None else 0)).init_from_data(x_train)
    fit(model, x_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress, device=device)
    return model.cpu()


def _run_ksparse(budget: str, device=None) -> dict[str, float]:
    from companion.metrics import encode_all, linear_probe_accuracy

    (x_train, y_train), (x_test, y_test) = _small_or_full(budget)
    epochs = 30 if budget == "quick" else 100
    metrics = {"pixels_linear_probe_acc": linear_probe_accuracy(x_train, y_train, x_test, y_test)}
    for k in (10, 25, 70):
        m = train_ksparse(x_train, k, epochs=epochs, device=device)
        z = encode_all(m, x_train)
        metrics[f"ksparse_k{k}_test_mse"] = reconstruction_error(m, x_test)
        metrics[f"ksparse_k{k}_dead_units"] = dead_units(z)
        metrics[f"ksparse_k{k}_linear_probe_acc"] = linear_probe_accuracy(z, y_train, encode_all(m, x_test), y_test)
    annealed = train_ksparse(x_train, 10, k_start=100, epochs=epochs, device=device)
    metrics["ksparse_k10_annealed_dead_units"] = dead_units(encode_all(annealed, x_train))
    metrics["ksparse_k10_annealed_test_mse"] = reconstruction_error(annealed, x_test)
    return metrics


register(Experiment(
    name="k-sparse",
    chapter="chapters/04_ksparse_autoencoder",
    description="k-sparse autoencoder with 500 linear units, k = 10, 25, 70 and k annealed 100 → 10: "
                "held-out error, dead units, linear probes against raw pixels.",
    run=_run_ksparse,
    reference={},
))


# ---------------------------------------------------- chapter 5: contractive autoencoder

def _run_contractive(budget: str, device=None) -> dict[str, float]:
    from companion.metrics import jacobian_norms
    from companion.models import (ContractiveAutoencoder, ContractiveAutoencoderConfig, DenoisingAutoencoder,
                                  DenoisingAutoencoderConfig)

    (x_train, _), (x_test, _) = _small_or_full(budget)
    epochs = 30 if budget == "quick" else 100
    shape = tuple(x_train.shape[1:])
    configs = {
        "ae": ContractiveAutoencoderConfig(image_shape=shape, lam=0.0),
        "cae": ContractiveAutoencoderConfig(image_shape=shape, lam=0.15),
        "dae": DenoisingAutoencoderConfig(image_shape=shape, code_size=128, hidden=(), code_act="sigmoid",
                                          out_act="sigmoid", noise_level=0.3),
    }
    metrics = {}
    for name, config in configs.items():
        companion.seed_everything(0)                     # the same initial weights for all three
        model = (DenoisingAutoencoder if name == "dae" else ContractiveAutoencoder)(config)
        fit(model, x_train, epochs=epochs, lr=3e-3, progress=False, device=device)
        metrics[f"{name}_test_mse"] = reconstruction_error(model, x_test)
        metrics[f"{name}_mean_jacobian_norm"] = jacobian_norms(model, x_test[:500]).mean().item()
    metrics["cae_over_ae_jacobian_norm"] = metrics["cae_mean_jacobian_norm"] / metrics["ae_mean_jacobian_norm"]
    return metrics


register(Experiment(
    name="contractive",
    chapter="chapters/05_contractive_autoencoder",
    description="Contractive (λ = 0.15) vs plain and denoising autoencoders with one sigmoid layer of 128 "
                "units: held-out error and mean ‖J_f(x)‖_F.",
    run=_run_contractive,
    reference={},
))


# ------------------------------------------------------ chapter 6: variational autoencoder

def _run_vae(budget: str, device=None) -> dict[str, float]:
    import numpy as np

    from companion.metrics import importance_weighted_log_likelihood
    from companion.models import VAE, VAEConfig
    from companion.train import evaluate

    (x_train, _), (x_test, _) = _small_or_full(budget, full=("mnist", "fashion-mnist"))
    epochs, n_eval = (30, 300) if budget == "quick" else (50, 1000)
    metrics = {}
    for k in (2, 16):
        companion.seed_everything(0)
        model = VAE(VAEConfig(image_shape=tuple(x_train.shape[1:]), latent_size=k, hidden=(512, 256)))
        fit(model, x_train, epochs=epochs, lr=2e-3, progress=False, device=device)
        x_eval = x_test[:n_eval]
        torch.manual_seed(0)
        metrics[f"vae_z{k}_test_neg_elbo"] = float(np.mean([evaluate(model, x_eval)["loss"] for _ in range(10)]))
        terms = evaluate(model, x_eval)
        metrics[f"vae_z{k}_test_recon"], metrics[f"vae_z{k}_test_kl"] = terms["recon"], terms["kl"]
        metrics[f"vae_z{k}_test_neg_log_px_iw1000"] = -importance_weighted_log_likelihood(
            model, x_eval, k=1000).mean().item()
    return metrics


register(Experiment(
    name="vae",
    chapter="chapters/06_vae",
    description="VAE (784-512-256, Bernoulli pixels) with 2-D and 16-D codes: held-out −ELBO, its parts, "
                "and the importance-weighted estimate of −log p(x) with k = 1,000.",
    run=_run_vae,
    reference={
        "vae_z16_test_neg_log_px_iw1000": {"value": 86.76, "source": "Burda et al. 2016, Table 1: VAE, "
                                           "dynamically binarised full MNIST, k = 5,000 (a different setting)"},
    },
))


# ------------------------------------------------------------------- chapter 7: β-VAE

#: Training budgets of the β-VAE experiment on procedurally rendered dSprites.
BETA_VAE_BUDGETS = {
    "quick": dict(size=32, n_train=50_000, epochs=2, hidden=(256, 128), lr=1e-3, batch_size=64,
                  capacity=12.0, points=300, mig_samples=10_000),
    "full": dict(size=64, n_train=300_000, epochs=6, hidden=(256, 128), lr=1e-3, batch_size=128,
                 capacity=20.0, points=1000, mig_samples=10_000),
}


def train_beta_vae(x_train: torch.Tensor, *, beta: float = 1.0, capacity: float | None = None,
                   gamma: float = 100.0, latent_size: int = 10, hidden: Sequence[int] = (256, 128),
                   epochs: int = 2, lr: float = 1e-3, batch_size: int = 64, seed: int = 0, device=None):
    """A β-VAE (Bernoulli pixels, 10-D code) trained on ``x_train``; returns ``(model, history)``.

    With ``capacity`` set, the objective is Burgess et al.'s γ |KL − C| with C rising linearly
    to ``capacity`` over the first half of training.
    """
    from companion.models import VAE, VAEConfig

    steps = epochs * -(-len(x_train) // batch_size)
    config = VAEConfig(image_shape=tuple(x_train.shape[1:]), latent_size=latent_size, hidden=tuple(hidden),
                       beta=beta, capacity=capacity, gamma=gamma, capacity_steps=max(1, steps // 2))
    companion.seed_everything(seed)
    model = VAE(config)
    history = fit(model, x_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False, device=device)
    return model.cpu().eval(), history


@torch.no_grad()
def dsprites_report(model, dataset, x_test: torch.Tensor, *, points: int = 500, mig_samples: int = 10_000,
                    seed: int = 0) -> dict:
    """Rate, distortion and disentanglement of a VAE on a factor grid such as ``DSprites``.

    Returns ``recon`` and ``kl`` (held-out nats per image), ``kl_per_dim`` (k,), ``active`` (latent
    dimensions with KL > 0.1 nats), ``beta_vae``, ``factor_vae``, ``mig`` and ``mi`` (the (k, 5)
    normalised mutual information matrix) measured on the posterior means.
    """
    from companion import losses
    from companion.metrics.disentanglement import evaluate as disentanglement

    model.eval()
    torch.manual_seed(seed)
    device = model_device(model)
    x_test = x_test.to(device)
    mu, logvar = (t.cpu() for t in model.posterior_params(x_test))
    kl_per_dim = (0.5 * (mu ** 2 + logvar.exp() - logvar - 1)).mean(0)
    out = model(x_test)
    scores = disentanglement(lambda x: model.encode(x.to(device)).mean.cpu(), dataset, points=points,
                             mig_samples=mig_samples, seed=seed)
    return {"recon": out.terms["recon"].item(), "kl": losses.kl_normal_std_normal(mu, logvar).mean().item(),
            "kl_per_dim": kl_per_dim.numpy(), "active": int((kl_per_dim > 0.1).sum()), **scores}


def _run_beta_vae(budget: str, device=None) -> dict[str, float]:
    from companion.data.dsprites import DSprites

    b = BETA_VAE_BUDGETS[budget]
    ds = DSprites(b["size"])
    x_train = ds.sample(b["n_train"], seed=1).images
    x_test = ds.sample(2000, seed=2).images
    runs = {"vae": dict(beta=1.0), "beta_vae": dict(beta=4.0), "capacity": dict(capacity=b["capacity"])}
    metrics = {}
    for name, kw in runs.items():
        model, _ = train_beta_vae(x_train, hidden=b["hidden"], epochs=b["epochs"], lr=b["lr"],
                                  batch_size=b["batch_size"], **kw, device=device)
        r = dsprites_report(model, ds, x_test, points=b["points"], mig_samples=b["mig_samples"])
        for key in ("recon", "kl", "active", "beta_vae", "factor_vae", "mig"):
            metrics[f"{name}_{key}"] = float(r[key])
    return metrics


register(Experiment(
    name="beta-vae",
    chapter="chapters/07_beta_vae",
    description="VAE (β = 1), β-VAE (β = 4) and controlled capacity (γ = 100) on dSprites rendered "
                "procedurally, MLP 256-128, 10-D code; quick: 32×32, 100k images seen, C → 12 nats; "
                "full (about 13 min): 64×64 (the original size), 1.8M images seen, C → 20 nats. "
                "Held-out reconstruction and KL, active dimensions, β-VAE score, FactorVAE score, MIG.",
    run=_run_beta_vae,
    reference={
        "vae_beta_vae": {"value": 0.6158, "source": "Higgins et al. 2017, Table 1: VAE on dSprites"},
        "beta_vae_beta_vae": {"value": 0.9923, "source": "Higgins et al. 2017, Table 1: β-VAE (β = 4)"},
        "beta_vae_mig": {"value": "0–0.4", "source": "Locatello et al. 2019: β-VAE MIG on dSprites over "
                                                      "seeds and β, most runs in this range (read off their plots)"},
    },
))


# ----------------------------------------------------------------------- chapter 8: VQ-VAE

#: Budgets of the VQ-VAE experiment: mnist-5k (quick) or full MNIST when present (full).
VQ_VAE_BUDGETS = {
    "quick": dict(num_codes=128, code_dim=16, channels=(32, 64), epochs=12, lr=2e-3, batch_size=64,
                  prior_epochs=20, prior_channels=64, prior_layers=4),
    "full": dict(num_codes=512, code_dim=32, channels=(64, 128), epochs=30, lr=1e-3, batch_size=64,
                 prior_epochs=40, prior_channels=128, prior_layers=6),
}


def train_vq_vae(x_train: torch.Tensor, *, codebook: str = "ema+restart", num_codes: int = 128,
                 code_dim: int = 16, channels: Sequence[int] = (32, 64), epochs: int = 12, lr: float = 2e-3,
                 batch_size: int = 64, seed: int = 0, x_track: torch.Tensor | None = None, device=None):
    """A VQ-VAE trained on ``x_train``; returns ``(model, history)``.

    With ``x_track``, the codebook's perplexity and used fraction on those images are recorded
    after every epoch in ``history.tracked``, and the code counts in ``history.tracked_counts``.
    """
    from companion.metrics.codebook import code_counts
    from companion.models import VQVAE, VQVAEConfig
    from companion.models.vq import perplexity

    config = VQVAEConfig(image_shape=tuple(x_train.shape[1:]), channels=tuple(channels), num_codes=num_codes,
                         code_dim=code_dim, codebook=codebook)
    companion.seed_everything(seed)
    model = VQVAE(config)
    counts_per_epoch = []

    def track(epoch, m):
        counts = code_counts(m, x_track)
        counts_per_epoch.append(counts)
        return {"perplexity": perplexity(counts).item(), "used_fraction": (counts > 0).float().mean().item()}

    history = fit(model, x_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False,
                  on_epoch_end=track if x_track is not None else None, device=device)
    history.tracked_counts = counts_per_epoch
    return model.cpu().eval(), history


@torch.no_grad()
def code_grids(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The code grid of every image, (N, 1, h, w) as float (the form :class:`PixelCNN` trains on), on the CPU."""
    model.eval()
    device = model_device(model)
    return torch.cat([model.encode(x[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(x), batch_size)])[:, None].float()


def train_code_prior(grids: torch.Tensor, num_codes: int, *, channels: int = 64, layers: int = 4,
                     epochs: int = 20, lr: float = 2e-3, batch_size: int = 64, seed: int = 0, device=None):
    """A :class:`PixelCNN` fitted to code grids (N, 1, h, w); returns ``(prior, history)``."""
    from companion.models import PixelCNN

    companion.seed_everything(seed)
    prior = PixelCNN(num_codes, channels=channels, layers=layers)
    history = fit(prior, grids, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False, device=device)
    return prior.cpu().eval(), history


def _run_vq_vae(budget: str, device=None) -> dict[str, float]:
    import math

    from companion.metrics import codebook_usage
    from companion.train import evaluate

    b = VQ_VAE_BUDGETS[budget]
    (x_train, _), (x_test, _) = _small_or_full(budget)
    arch = {k: b[k] for k in ("num_codes", "code_dim", "channels", "epochs", "lr", "batch_size")}
    metrics = {}
    models = {}
    for name, codebook in (("loss", "loss"), ("ema", "ema"), ("restart", "ema+restart")):
        models[name], _ = train_vq_vae(x_train, codebook=codebook, **arch, device=device)
        usage = codebook_usage(models[name], x_test)
        metrics[f"{name}_test_recon"] = evaluate(models[name], x_test)["recon"]
        metrics[f"{name}_test_perplexity"] = usage["perplexity"]
        metrics[f"{name}_test_used_fraction"] = usage["used_fraction"]
    model = models["restart"]
    prior, _ = train_code_prior(code_grids(model, x_train), b["num_codes"], channels=b["prior_channels"],
                                layers=b["prior_layers"], epochs=b["prior_epochs"], device=device)
    metrics["prior_test_bits_per_code"] = evaluate(prior, code_grids(model, x_test))["bits_per_code"]
    metrics["uniform_bits_per_code"] = math.log2(b["num_codes"])
    return metrics


register(Experiment(
    name="vq-vae",
    chapter="chapters/08_vq_vae",
    description="VQ-VAE (conv 28×28 → 7×7 grid of codes) with the codebook learned by the VQ loss, by EMA, "
                "and by EMA with dead-code restarts: held-out reconstruction (nats), perplexity and share of "
                "codes used; then a PixelCNN prior over the code grids in bits per code (quick: mnist-5k, "
                "K = 128; full: full MNIST when its files are present, K = 512).",
    run=_run_vq_vae,
    reference={
        "restart_test_perplexity": {"value": 350.0, "source": "a public PyTorch VQ-VAE reference on CIFAR-10, "
                                    "K = 512, EMA codebook (a different data set)"},
    },
))


# -------------------------------------------------------------------- chapter 9: VQ-VAE-2

#: Budgets of the VQ-VAE-2 experiment, on digits padded to 32×32: both VQ-VAE-2 models and the
#: single-level VQ-VAE spend 512 bits per image (16·log2 256 + 64·log2 64 = 64·log2 256).
VQ_VAE2_BUDGETS = {
    "quick": dict(num_codes_top=256, num_codes_bottom=64, single_num_codes=256, code_dim=16, channels=(32, 64),
                  epochs=12, lr=2e-3, batch_size=64, top_weight=1.0,
                  prior_epochs=6, prior_channels=64, prior_blocks=4, prior_heads=4, seeds=(0,)),
    "full": dict(num_codes_top=256, num_codes_bottom=64, single_num_codes=256, code_dim=16, channels=(32, 64),
                 epochs=30, lr=2e-3, batch_size=64, top_weight=1.0,
                 prior_epochs=10, prior_channels=128, prior_blocks=6, prior_heads=8, seeds=(0, 1, 2)),
}


def padded_digits(budget: str = "quick"):
    """(train, test) splits of digits centred on 32×32 (mnist-5k, or full MNIST for the full
    budget when its files are present)."""
    from companion.data import Split, pad_to

    return tuple(Split(pad_to(s.x, 32), s.y) for s in _small_or_full(budget))


def train_vq_vae2(x_train: torch.Tensor, *, num_codes_top: int = 256, num_codes_bottom: int = 64,
                  code_dim: int = 16, channels: Sequence[int] = (32, 64), top_weight: float = 0.0,
                  epochs: int = 12, lr: float = 2e-3, batch_size: int = 64, seed: int = 0, device=None):
    """A two-level :class:`VQVAE2` trained on ``x_train``; returns ``(model, history)``."""
    from companion.models import VQVAE2, VQVAE2Config

    config = VQVAE2Config(image_shape=tuple(x_train.shape[1:]), channels=tuple(channels), code_dim=code_dim,
                          num_codes_top=num_codes_top, num_codes_bottom=num_codes_bottom, top_weight=top_weight)
    companion.seed_everything(seed)
    model = VQVAE2(config)
    history = fit(model, x_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False, device=device)
    return model.cpu().eval(), history


@torch.no_grad()
def level_codes(model, x: torch.Tensor, batch_size: int = 1000):
    """Both code grids of every image, as :class:`companion.models.vqvae2.Codes` (top, bottom)."""
    from companion.models.vqvae2 import Codes

    model.eval()
    device = model_device(model)
    parts = [model.encode(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    return Codes(torch.cat([p.top.cpu() for p in parts]), torch.cat([p.bottom.cpu() for p in parts]))


def swap_agreement(model, x: torch.Tensor, y: torch.Tensor, classify, *, seed: int = 0) -> dict[str, float]:
    """Decode the top codes of each image with the bottom codes of another (a fixed random
    pairing) and classify the result: the share that takes the top image's label, and the
    bottom image's (``classify(images) -> labels``, e.g. a :func:`linear_probe` on pixels)."""
    import numpy as np

    codes = level_codes(model, x)
    other = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        device = model_device(model)
        swapped = model.decode(codes.top.to(device), codes.bottom[other].to(device)).cpu()
    labels = np.asarray(classify(swapped))
    return {"follows_top": float((labels == y.numpy()).mean()), "follows_bottom": float((labels == y[other].numpy()).mean())}


def train_level_priors(codes, num_codes_top: int, num_codes_bottom: int, *, channels: int = 64,
                       blocks: int = 4, heads: int = 4, epochs: int = 6, lr: float = 2e-3,
                       batch_size: int = 64, seed: int = 0, device=None):
    """The two priors of VQ-VAE-2 fitted to code grids ``codes`` (a ``Codes``): a
    :class:`PixelSNAIL` p(top) and a conditional PixelSNAIL p(bottom | top). Returns
    ``(top_prior, bottom_prior, top_history, bottom_history)``."""
    from companion.models import PixelSNAIL
    from companion.models.pixelcnn import stack_condition

    companion.seed_everything(seed)
    top_prior = PixelSNAIL(num_codes_top, tuple(codes.top.shape[1:]), channels=channels, blocks=blocks, heads=heads)
    top_history = fit(top_prior, codes.top[:, None].float(), epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed, progress=False, device=device)
    companion.seed_everything(seed)
    bottom_prior = PixelSNAIL(num_codes_bottom, tuple(codes.bottom.shape[1:]), channels=channels, blocks=blocks,
                              heads=heads, cond_codes=num_codes_top)
    bottom_history = fit(bottom_prior, stack_condition(codes.bottom, codes.top), epochs=epochs, lr=lr,
                         batch_size=batch_size, seed=seed, progress=False, device=device)
    return top_prior.cpu().eval(), bottom_prior.cpu().eval(), top_history, bottom_history


@torch.no_grad()
def sample_vq_vae2(model, top_prior, bottom_prior, n: int, *, temperature: float = 1.0,
                   top: torch.Tensor | None = None, generator: torch.Generator | None = None):
    """Ancestral sampling: top codes from ``top_prior`` (or the given ``top`` grids, (n, h, w)),
    bottom codes from ``bottom_prior`` given them, then the decoder. Returns ``(images, Codes)``."""
    from companion.models.pixelcnn import stack_condition
    from companion.models.vqvae2 import Codes

    if top is None:
        top = top_prior.sample(n, top_prior.grid_shape, generator=generator, temperature=temperature).cpu()
    elif len(top) != n:
        raise ValueError(f"expected {n} top grids, got {len(top)}")
    cond = stack_condition(torch.zeros(n, *bottom_prior.grid_shape, dtype=torch.long), top.cpu())[:, 1].long()
    bottom = bottom_prior.sample(n, bottom_prior.grid_shape, generator=generator, temperature=temperature,
                                 cond=cond.to(model_device(bottom_prior))).cpu()  # top codes repeated to 8×8
    device = model_device(model)
    return model.decode(top.to(device), bottom.to(device)).cpu(), Codes(top.cpu(), bottom)


def _run_vq_vae2(budget: str, device=None) -> dict[str, float]:
    import math

    import numpy as np

    from companion.metrics import linear_probe
    from companion.models.pixelcnn import stack_condition
    from companion.train import evaluate

    b = VQ_VAE2_BUDGETS[budget]
    (x_train, y_train), (x_test, y_test) = padded_digits(budget)
    classify = linear_probe(x_train, y_train)
    shared = {k: b[k] for k in ("code_dim", "channels", "epochs", "lr", "batch_size")}
    levels = {k: b[k] for k in ("num_codes_top", "num_codes_bottom")}
    runs: dict[str, list[float]] = {}
    separated = None
    for seed in b["seeds"]:
        single, _ = train_vq_vae(x_train, num_codes=b["single_num_codes"], seed=seed, **shared, device=device)
        found = {"single_test_recon": evaluate(single, x_test)["recon"]}
        for name, weight in (("vqvae2", 0.0), ("separated", b["top_weight"])):
            model, _ = train_vq_vae2(x_train, top_weight=weight, seed=seed, **levels, **shared, device=device)
            scores = evaluate(model, x_test)
            swap = swap_agreement(model, x_test, y_test, classify, seed=seed)
            found.update({f"{name}_test_recon": scores["recon"], f"{name}_top_only_recon": scores["recon_top"],
                          f"{name}_swap_follows_top": swap["follows_top"],
                          f"{name}_swap_follows_bottom": swap["follows_bottom"]})
            if name == "separated" and separated is None:
                separated = model
        for k, v in found.items():
            runs.setdefault(k, []).append(v)
    metrics = {k: float(np.mean(v)) for k, v in runs.items()}
    metrics["bits_per_image"] = 64 * math.log2(b["single_num_codes"])
    train_codes, test_codes = level_codes(separated, x_train), level_codes(separated, x_test)
    top_prior, bottom_prior, _, _ = train_level_priors(train_codes, **levels, channels=b["prior_channels"],
                                                       blocks=b["prior_blocks"], heads=b["prior_heads"],
                                                       epochs=b["prior_epochs"], device=device)
    metrics["top_prior_bits_per_code"] = evaluate(top_prior, test_codes.top[:, None].float())["bits_per_code"]
    metrics["bottom_prior_bits_per_code"] = evaluate(bottom_prior, stack_condition(test_codes.bottom,
                                                                                   test_codes.top))["bits_per_code"]
    metrics["top_uniform_bits_per_code"] = math.log2(b["num_codes_top"])
    metrics["bottom_uniform_bits_per_code"] = math.log2(b["num_codes_bottom"])
    images, _ = sample_vq_vae2(separated, top_prior, bottom_prior, 100, generator=torch.Generator().manual_seed(0))
    metrics["samples_classes_found"] = float(len(np.unique(classify(images))))
    return metrics


register(Experiment(
    name="vq-vae-2",
    chapter="chapters/09_vq_vae2",
    description="VQ-VAE-2 on digits padded to 32×32: a single-level VQ-VAE (8×8 codes, K = 256) against two-level "
                "models (4×4 top codes, K = 256, and 8×8 bottom codes, K = 64: the same 512 bits per image), one "
                "with the paper's objective and one with an extra top-level reconstruction; held-out "
                "reconstruction (nats), top-level-only reconstruction, and where a linear probe places images "
                "decoded from the top codes of one digit and the bottom codes of another; then PixelSNAIL priors "
                "(top, and bottom given top) in bits per code, and ancestral samples (quick: mnist-5k, one seed; "
                "full: full MNIST when present, three seeds, metrics averaged).",
    run=_run_vq_vae2,
    reference={
        "top_uniform_bits_per_code": {"value": 9.0, "source": "Razavi et al. 2019: K = 512 codes per level "
                                      "(32×32 top and 64×64 bottom grids for 256×256 ImageNet)"},
    },
))


# ----------------------------------------------------------------------- chapter 10: TD-VAE

#: Budgets of the TD-VAE experiment: moving mnist-5k digits (quick) or moving MNIST digits
#: (full, when the files are present), and a noisy oscillator drawn as a dot.
TD_VAE_BUDGETS = {
    "quick": dict(train_sequences=2000, test_sequences=500, length=12, digits=dict(z_size=16, belief_size=128,
                  hidden=256, jumps=(1, 4), pairs=4), epochs=40, lr=2e-3, batch_size=32,
                  oscillator=dict(sequences=2000, length=20, epochs=25, z_size=4, belief_size=64, hidden=64)),
    "full": dict(train_sequences=10000, test_sequences=2000, length=20, digits=dict(z_size=16, belief_size=128,
                 hidden=256, jumps=(1, 4), pairs=8), epochs=60, lr=2e-3, batch_size=32,
                 oscillator=dict(sequences=10000, length=20, epochs=40, z_size=4, belief_size=64, hidden=64)),
}


def train_tdvae(frames: torch.Tensor, *, epochs: int = 10, lr: float = 2e-3, batch_size: int = 32,
                seed: int = 0, val: torch.Tensor | None = None, device=None, **config):
    """A :class:`TDVAE` trained on sequences ``frames`` (N, T, *frame_shape); keyword arguments
    go to :class:`TDVAEConfig`. Returns ``(model, history)``."""
    from companion.models.tdvae import TDVAE, TDVAEConfig

    companion.seed_everything(seed)
    model = TDVAE(TDVAEConfig(frame_shape=tuple(frames.shape[2:]), **config))
    history = fit(model, frames, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, val=val, progress=False, device=device)
    return model.cpu().eval(), history


@torch.no_grad()
def jumpy_errors(model, frames: torch.Tensor, t1: int, jumps: Sequence[int], *, mean_frame: torch.Tensor,
                 samples: int = 8, seed: int = 0) -> dict[str, list[float]]:
    """Squared error per frame (summed over pixels, averaged over sequences) of predicting
    frame t1 + δ from frames 0 … t1, for each δ in ``jumps``: TD-VAE (one jump of δ, averaged
    over ``samples`` states), copying frame t1, and the per-pixel ``mean_frame``."""
    if t1 + max(jumps) >= frames.shape[1]:
        raise ValueError(f"t1 + δ must be inside the sequences ({frames.shape[1]} steps)")
    g = torch.Generator().manual_seed(seed)
    err = lambda a, b: (a - b).pow(2).flatten(1).sum(1).mean().item()   # noqa: E731
    out: dict[str, list[float]] = {"tdvae": [], "copy_last": [], "mean_frame": []}
    for d in jumps:
        truth = frames[:, t1 + d]
        predicted = model.predict(frames.to(model_device(model)), t1, d, samples=samples, generator=g).cpu()
        out["tdvae"].append(err(predicted, truth))
        out["copy_last"].append(err(frames[:, t1], truth))
        out["mean_frame"].append(err(mean_frame.expand_as(truth), truth))
    return out


@torch.no_grad()
def belief_probe(model, train, test, targets, *, skip: int = 2) -> dict[str, float]:
    """R² of linear maps from the belief states b_t (t ≥ ``skip``) to true state variables,
    fitted on ``train`` and scored on ``test`` (both :class:`Sequences`). ``targets`` maps a
    name to a function ``Sequences -> (N, T[, k])`` tensor."""
    from companion.metrics import linear_probe_r2

    device = model_device(model)
    b_train, b_test = (model.beliefs(s.frames.to(device))[:, skip:].cpu() for s in (train, test))
    flat = lambda b: b.reshape(-1, b.shape[-1])   # noqa: E731
    scores = {}
    for name, f in targets.items():
        y_train, y_test = f(train)[:, skip:], f(test)[:, skip:]
        k = y_train.shape[2] if y_train.dim() == 3 else 1
        scores[name] = linear_probe_r2(flat(b_train), y_train.reshape(-1, k), flat(b_test),
                                       y_test.reshape(-1, k)).mean().item()
    return scores


def circle(seqs, width: int = 28) -> torch.Tensor:
    """The wrapped horizontal shift of moving digits as a point on the unit circle (N, T, 2):
    a linear probe cannot follow the jump from W−1 back to 0, but it can follow (cos, sin)."""
    angle = 2 * torch.pi * seqs.position / width
    return torch.stack([angle.cos(), angle.sin()], dim=-1)


def moving_digit_data(budget: str = "quick"):
    """(train, test) :class:`Sequences` of moving digits for a TD-VAE budget; test sequences
    use held-out digits."""
    from companion.data.sequences import moving_digits

    b = TD_VAE_BUDGETS[budget]
    (x_train, y_train), (x_test, y_test) = _small_or_full(budget)
    return (moving_digits(x_train, y_train, length=b["length"], n=b["train_sequences"], seed=0),
            moving_digits(x_test, y_test, length=b["length"], n=b["test_sequences"], seed=1))


def _run_td_vae(budget: str, device=None) -> dict[str, float]:
    from companion.data.sequences import oscillator

    b = TD_VAE_BUDGETS[budget]
    train, test = moving_digit_data(budget)
    model, _ = train_tdvae(train.frames, epochs=b["epochs"], lr=b["lr"], batch_size=b["batch_size"], **b["digits"], device=device)
    t1 = b["length"] - 1 - 4
    errors = jumpy_errors(model, test.frames, t1, (1, 2, 3, 4), mean_frame=train.frames.mean((0, 1)))
    metrics = {f"{k}_error_jump{d}": v for k, vs in errors.items() for d, v in zip((1, 2, 3, 4), vs)}
    metrics["digits_position_r2"] = belief_probe(model, train, test, {"position": circle})["position"]
    o = b["oscillator"]
    osc_train, osc_test = (oscillator(n, o["length"], seed=s) for n, s in ((o["sequences"], 0), (500, 1)))
    osc, _ = train_tdvae(osc_train.frames, epochs=o["epochs"], lr=b["lr"], batch_size=b["batch_size"],
                         z_size=o["z_size"], belief_size=o["belief_size"], hidden=o["hidden"], device=device)
    scores = belief_probe(osc, osc_train, osc_test, {"position": lambda s: s.position, "velocity": lambda s: s.velocity})
    metrics["oscillator_position_r2"], metrics["oscillator_velocity_r2"] = scores["position"], scores["velocity"]
    return metrics


register(Experiment(
    name="td-vae",
    chapter="chapters/10_td_vae",
    description="TD-VAE on digits moving one pixel per step (wrapping around): squared error per frame of "
                "jumpy predictions δ = 1…4 steps ahead against copying the last frame and the mean frame, and "
                "the R² of a linear probe from the belief state to the digit's position; then a noisy "
                "harmonic oscillator drawn as a dot, probed for position and velocity (quick: mnist-5k digits, "
                "2,000 sequences of 12 frames; full: MNIST digits when present, 20,000 of 20).",
    run=_run_td_vae,
    reference={},
))
