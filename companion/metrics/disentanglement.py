r"""Disentanglement metrics: the β-VAE score, the FactorVAE score and the mutual information gap.

Each metric has a pure numpy core over codes and ground-truth factors, separate from the
plumbing that draws images from a generator and encodes them:

=========================  ==================================================================
core                       what it measures
=========================  ==================================================================
:func:`beta_vae_score`     Higgins et al. (2017): pairs of images share one factor; a linear
                           classifier predicts that factor from the mean absolute difference
                           of their codes. Chance is 1/K for K factors.
:func:`factor_vae_score`   Kim & Mnih (2018): in a batch with one factor fixed, the code
                           dimension of least (normalised) variance votes for that factor; a
                           majority-vote classifier maps dimensions to factors.
:func:`mig`                Chen et al. (2018): for each factor v_a, the gap between the two
                           largest I(z_j; v_a) / H(v_a) over code dimensions j, averaged.
=========================  ==================================================================

The samplers (:func:`beta_vae_pairs`, :func:`factor_vae_batches`) draw factor classes from a
factor grid such as :class:`companion.data.dsprites.DSprites`; :func:`evaluate` renders
them, encodes them with a representation function (e.g. the mean of q_φ(z|x)) and runs the
three cores. Mutual information is in nats.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from companion.runtime import check_seed, drawing_from

__all__ = ["discretize", "mutual_information", "entropy", "mig_gaps", "mig", "factor_of_each", "beta_vae_score",
           "factor_vae_score", "beta_vae_pairs", "factor_vae_batches", "evaluate"]


# -- checks ---------------------------------------------------------------------------------
def _array(a, name: str, ndim: int, integer: bool = False) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {a.shape}")
    if integer and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integers (classes), got dtype {a.dtype}")
    if not integer and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
    if not integer and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


# -- mutual information gap -----------------------------------------------------------------
def discretize(codes, bins: int = 20) -> np.ndarray:
    """Each code dimension cut into ``bins`` equal-width bins between its min and max.

    ``codes`` (N, D) → int64 (N, D) in 0…bins−1. A constant dimension falls in bin 0.
    """
    z = _array(codes, "codes", 2).astype(np.float64)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int ≥ 2, got {bins!r}")
    lo, hi = z.min(0), z.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.clip(np.floor((z - lo) / width * bins), 0, bins - 1).astype(np.int64)


def entropy(factors) -> np.ndarray:
    """Plug-in entropy H(v_a) in nats of each column of discrete ``factors`` (n, F) → (F,)."""
    v = _array(factors, "factors", 2, integer=True)
    out = np.empty(v.shape[1])
    for k in range(v.shape[1]):
        p = np.bincount(v[:, k] - v[:, k].min()) / len(v)
        p = p[p > 0]
        out[k] = -(p * np.log(p)).sum()
    return out


def mutual_information(discrete_codes, factors) -> np.ndarray:
    """Plug-in mutual information I(z_j; v_a) in nats, (m, F), between discrete columns."""
    z = _array(discrete_codes, "discrete_codes", 2, integer=True)
    v = _array(factors, "factors", 2, integer=True)
    if len(z) != len(v):
        raise ValueError(f"codes and factors must have the same number of rows, got {len(z)} and {len(v)}")
    n = len(z)
    out = np.empty((z.shape[1], v.shape[1]))
    for j in range(z.shape[1]):
        a = z[:, j] - z[:, j].min()
        for k in range(v.shape[1]):
            b = v[:, k] - v[:, k].min()
            nb = b.max() + 1
            joint = np.bincount(a * nb + b, minlength=(a.max() + 1) * nb).reshape(-1, nb) / n
            pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
            nz = joint > 0
            out[j, k] = (joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum()
    return np.maximum(out, 0.0)


def mig_gaps(mi, entropies) -> np.ndarray:
    """Per-factor gap: (largest − second largest I(z_j; v_a) over j) / H(v_a), shape (F,).

    ``mi`` is the (m, F) mutual-information matrix and ``entropies`` the (F,) H(v_a).
    """
    m = _array(mi, "mi", 2).astype(np.float64)
    h = _array(entropies, "entropies", 1).astype(np.float64)
    if m.shape[1] != len(h):
        raise ValueError(f"mi has {m.shape[1]} factor columns but {len(h)} entropies were given")
    if m.shape[0] < 2:
        raise ValueError("the gap needs at least 2 code dimensions")
    if np.any(h <= 0):
        raise ValueError("every factor must vary (entropy > 0)")
    top2 = np.sort(m, axis=0)[-2:]                    # (2, K): second largest, largest
    return (top2[1] - top2[0]) / h


def mig(codes, factors, bins: int = 20) -> float:
    """Mutual information gap (Chen et al., 2018) of continuous ``codes`` (N, D) w.r.t. discrete
    ``factors`` (N, K): the mean over factors of :func:`mig_gaps`, in [0, 1].

    Invariant to permuting code dimensions and to rescaling or shifting each of them.
    """
    v = _array(factors, "factors", 2, integer=True)
    mi = mutual_information(discretize(codes, bins), v)
    return float(mig_gaps(mi, entropy(v)).mean())


def factor_of_each(mi, factor_names) -> list[tuple[str, float]]:
    """For each code coordinate j, the factor it shares the most information with, and that
    normalised information: ``[(name, I(z_j; v_a) / H(v_a)), …]`` from the (m, F) matrix ``mi``
    that :func:`evaluate` returns. What labels a row of a latent traversal."""
    m = _array(mi, "mi", 2).astype(np.float64)
    names = list(factor_names) if not isinstance(factor_names, str) else None
    if names is None or len(names) != m.shape[1] or not all(isinstance(n, str) for n in names):
        raise ValueError(f"factor_names must be {m.shape[1]} names, one per column of mi, got {factor_names!r}")
    best = m.argmax(1)
    return [(names[k], float(m[j, k])) for j, k in enumerate(best)]


# -- β-VAE score ----------------------------------------------------------------------------
def _split(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    idx = np.random.default_rng(seed).permutation(n)
    n_train = int(round(train_fraction * n))
    if n_train < 1 or n_train >= n:
        raise ValueError(f"{n} points are too few to split into train and test")
    return idx[:n_train], idx[n_train:]


def _check_votes(codes: np.ndarray, labels, name: str) -> np.ndarray:
    y = _array(labels, "labels", 1, integer=True)
    if len(y) != len(codes):
        raise ValueError(f"{name} has {len(codes)} points but labels has {len(y)}")
    return y


def beta_vae_score(codes_a, codes_b, labels, train_fraction: float = 0.8, seed: int = 0) -> float:
    """The β-VAE disentanglement score of Higgins et al. (2017), in [0, 1].

    Args:
        codes_a, codes_b: (P, L, D) codes of P batches of L image pairs; in batch p the two
            images of every pair share the value of factor ``labels[p]``.
        labels: (P,) index of the shared factor.

    Each batch becomes one point z_diff = mean over pairs of |z_a − z_b| (D,); a logistic
    regression is trained on a ``train_fraction`` of the points and the score is its accuracy
    on the others.
    """
    seed = check_seed(seed)
    from sklearn.linear_model import LogisticRegression

    a, b = _array(codes_a, "codes_a", 3), _array(codes_b, "codes_b", 3)
    if a.shape != b.shape:
        raise ValueError(f"codes_a and codes_b must have the same shape, got {a.shape} and {b.shape}")
    y = _check_votes(a, labels, "codes_a")
    z_diff = np.abs(a - b).mean(1)                                     # (P, D)
    train, test = _split(len(y), train_fraction, seed)
    if len(np.unique(y[train])) < 2:
        return float(np.mean(y[test] == y[train][0]))
    clf = LogisticRegression(max_iter=2000).fit(z_diff[train], y[train])
    return float(clf.score(z_diff[test], y[test]))


# -- FactorVAE score ------------------------------------------------------------------------
def factor_vae_score(codes, labels, global_std, num_factors: int, prune_std: float = 0.05,
                     train_fraction: float = 0.8, seed: int = 0) -> float:
    """The FactorVAE disentanglement score of Kim & Mnih (2018), in [0, 1].

    Args:
        codes: (P, L, D) codes of P batches of L images; in batch p factor ``labels[p]`` is
            fixed and the others vary.
        labels: (P,) index of the fixed factor.
        global_std: (D,) standard deviation of each code dimension over the data set.
        num_factors: K, the number of factors.
        prune_std: dimensions with a global std below this are collapsed and cannot vote.

    Each batch votes for the active dimension whose variance, after dividing by its global
    std, is smallest. The classifier maps each dimension to the factor it got most training
    votes from; the score is its accuracy on the held-out votes.
    """
    seed = check_seed(seed)
    z = _array(codes, "codes", 3).astype(np.float64)
    y = _check_votes(z, labels, "codes")
    s = _array(global_std, "global_std", 1).astype(np.float64)
    if len(s) != z.shape[2]:
        raise ValueError(f"global_std has {len(s)} entries for codes of dimension {z.shape[2]}")
    if isinstance(num_factors, bool) or not isinstance(num_factors, int) or num_factors < 1 or y.max() >= num_factors:
        raise ValueError(f"num_factors must be an int above every label, got {num_factors!r}")
    active = s >= prune_std
    train, test = _split(len(y), train_fraction, seed)
    if not active.any():
        return float(np.mean(y[test] == np.bincount(y[train]).argmax()))
    var = (z[:, :, active] / s[active]).var(axis=1)                    # (P, D_active)
    dims = np.flatnonzero(active)[var.argmin(1)]                        # (P,) the voting dimension
    votes = np.zeros((len(s), num_factors), dtype=np.int64)
    np.add.at(votes, (dims[train], y[train]), 1)
    classifier = votes.argmax(1)                                       # dimension → factor
    return float(np.mean(classifier[dims[test]] == y[test]))


def _check_dataset(dataset) -> None:
    if not hasattr(dataset, "factor_sizes") or not callable(getattr(dataset, "render", None)):
        raise TypeError(f"dataset must be a factor grid with factor_sizes and render(classes) (a DSprites), "
                        f"got {type(dataset).__name__}")


# -- samplers -------------------------------------------------------------------------------
def _check_counts(points: int, batch_size: int) -> None:
    for name, v in (("points", points), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def _sizes(factor_sizes) -> np.ndarray:
    sizes = np.asarray(factor_sizes)
    if sizes.ndim != 1 or len(sizes) < 1 or not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1):
        raise ValueError(f"factor_sizes must be positive ints, got {factor_sizes!r}")
    return sizes


def _uniform(sizes: np.ndarray, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.integers(0, s, size=shape) for s in sizes], axis=-1)


def beta_vae_pairs(factor_sizes, points: int, batch_size: int = 64,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factor classes for :func:`beta_vae_score`: ``(classes_a, classes_b, labels)`` with
    classes (points, batch_size, K) and labels (points,); pair members share factor labels[p]."""
    sizes, rng = _sizes(factor_sizes), rng if rng is not None else np.random.default_rng(0)
    _check_counts(points, batch_size)
    labels = rng.integers(0, len(sizes), size=points)
    a = _uniform(sizes, (points, batch_size), rng)
    b = _uniform(sizes, (points, batch_size), rng)
    rows = np.arange(points)
    b[rows, :, labels] = a[rows, :, labels]
    return a, b, labels


def factor_vae_batches(factor_sizes, points: int, batch_size: int = 64,
                       rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Factor classes for :func:`factor_vae_score`: ``(classes, labels)``, classes
    (points, batch_size, K) with factor labels[p] fixed to one random value within batch p."""
    sizes, rng = _sizes(factor_sizes), rng if rng is not None else np.random.default_rng(0)
    _check_counts(points, batch_size)
    labels = rng.integers(0, len(sizes), size=points)
    c = _uniform(sizes, (points, batch_size), rng)
    rows = np.arange(points)
    c[rows, :, labels] = c[rows, :1, labels]
    return c, labels


# -- plumbing -------------------------------------------------------------------------------
def _by_name(things) -> tuple[dict, Callable[[dict], object]]:
    """``(dict by name, unwrap)`` for a function taking one thing or a dict of them:
    a single thing becomes ``{None: thing}``, and ``unwrap`` turns the per-name results back
    into that one result (a dict stays a dict)."""
    if isinstance(things, dict):
        return things, lambda results: results
    return {None: things}, lambda results: results[None]


def evaluate(representation, dataset, *, points: int = 500, batch_size: int = 64, mig_samples: int = 10_000,
             bins: int = 20, seed: int = 0, chunk: int = 4096) -> dict:
    """All three metrics of a representation on a factor grid such as ``DSprites``.

    Args:
        representation: images (N, C, H, W) → codes (N, D), e.g. ``lambda x: vae.encode(x).mean``.
            It receives CPU images; for a model on a GPU, move them inside it
            (``lambda x: vae.encode(x.to(device)).mean``). Codes may come back on any device.
            Or a dict of such functions by name: each image is then rendered once and encoded
            by all of them, and every one is scored on the same images.
        dataset: has ``factor_sizes`` and ``render(classes)``.
        points: votes (batches) for the β-VAE and FactorVAE scores.
        mig_samples: images drawn for MIG and for the global std of the FactorVAE score.

    Returns ``{"beta_vae", "factor_vae", "mig", "mi"}``, ``mi`` being the (D, K) matrix of
    I(z_j; v_a) / H(v_a) that MIG reads its gaps from; for a dict, one such dict per name.
    """
    seed = check_seed(seed)
    reps, unwrap = _by_name(representation)
    for f in reps.values():
        if not callable(f):
            raise TypeError(f"representation must be a function images → codes (or a dict of them), "
                            f"got {type(f).__name__}")
    _check_dataset(dataset)
    rng = np.random.default_rng(seed)
    sizes = _sizes(dataset.factor_sizes)

    @torch.no_grad()
    def encode(classes: np.ndarray) -> dict:
        flat = torch.from_numpy(classes.reshape(-1, len(sizes)))
        parts = {name: [] for name in reps}
        for i in range(0, len(flat), chunk):
            images = dataset.render(flat[i:i + chunk])                   # rendered once for every representation
            for name, f in reps.items():
                parts[name].append(f(images))
        codes = {}
        for name, p in parts.items():
            z = torch.cat(p).double().cpu().numpy()
            if z.ndim != 2 or len(z) != len(flat):
                raise ValueError(f"representation must map N images to (N, D) codes, got {z.shape}")
            codes[name] = z.reshape(*classes.shape[:-1], -1)
        return codes

    factors = _uniform(sizes, (mig_samples,), rng)
    codes = encode(factors)
    a, b, labels_b = beta_vae_pairs(sizes, points, batch_size, rng)
    batches, labels_f = factor_vae_batches(sizes, points, batch_size, rng)
    codes_a, codes_b, codes_f = encode(a), encode(b), encode(batches)
    h = entropy(factors)
    out = {}
    for name in reps:
        mi = mutual_information(discretize(codes[name], bins), factors)
        out[name] = {
            "beta_vae": beta_vae_score(codes_a[name], codes_b[name], labels_b, seed=seed),
            "factor_vae": factor_vae_score(codes_f[name], labels_f, codes[name].std(0), len(sizes), seed=seed),
            "mig": float(mig_gaps(mi, h).mean()),
            "mi": mi / h,
        }
    return unwrap(out)


@torch.no_grad()
def dsprites_report(model, dataset, x_test: torch.Tensor, *, points: int = 500, mig_samples: int = 10_000,
                    seed: int = 0) -> dict:
    """Rate, distortion and disentanglement of a VAE on a factor grid such as ``DSprites``.

    Returns ``recon`` and ``kl`` (held-out nats per image), ``kl_per_dim`` (k,), ``active`` (latent
    dimensions with KL > 0.1 nats, as :func:`companion.metrics.active_units` counts them),
    ``beta_vae``, ``factor_vae``, ``mig`` and ``mi`` (the (k, 5) normalised mutual information matrix) measured on the posterior means. ``model`` may be a
    dict of VAEs by name: then one report per name, all scored on the same rendered images,
    each rendered once (what a comparison of several β needs, at the cost of one).
    """
    seed = check_seed(seed)
    from companion import losses
    from companion.metrics.latents import ACTIVE_KL
    from companion.models.base import model_device

    models, unwrap = _by_name(model)
    for m in models.values():
        if not callable(getattr(m, "posterior_params", None)):
            raise TypeError(f"dsprites_report needs a VAE (a model with posterior_params), got {type(m).__name__}")
    _check_dataset(dataset)
    reports, encoders = {}, {}
    for name, m in models.items():
        m.eval()
        device = model_device(m)
        x = x_test.to(device)
        mu, logvar = (t.cpu() for t in m.posterior_params(x))
        kl_per_dim = losses.kl_normal_std_normal_per_dim(mu, logvar).mean(0)
        with drawing_from(torch.Generator().manual_seed(seed), device):     # the draw of z behind recon
            out = m(x)
        reports[name] = {"recon": out.terms["recon"].item(), "kl": losses.kl_normal_std_normal(mu, logvar).mean().item(),
                         "kl_per_dim": kl_per_dim.numpy(), "active": int((kl_per_dim > ACTIVE_KL).sum())}
        encoders[name] = lambda x, m=m, device=device: m.encode(x.to(device)).mean.cpu()
    scores = evaluate(encoders, dataset, points=points, mig_samples=mig_samples, seed=seed)
    for name in models:
        reports[name].update(scores[name])
    return unwrap(reports)
