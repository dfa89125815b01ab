r"""Objectives as pure functions of tensors.

**The reduction convention**, used by every loss in the book: *sum over the data
dimensions, mean over the batch*. A loss is therefore a number per example (for a
likelihood-based loss, nats per example), independent of the batch size, and terms such as
a reconstruction error and a KL divergence add without hidden rescaling. Weights such as
β or λ are always explicit arguments of the caller, never factors inside these functions.

To compare with papers that report a per-pixel mean squared error, divide by the number
of dimensions d; to get bits per dimension from nats per example, divide by d·ln 2
(:func:`bits_per_dim`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from companion.runtime import plain


def _tensor(t, what: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch tensor, got {type(t).__name__}")


def _check_pair(x_hat: torch.Tensor, x: torch.Tensor, name: str) -> tuple[float, float]:
    """Check a (prediction, target) pair; return the target's (min, max)."""
    if not isinstance(x_hat, torch.Tensor) or not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: both arguments must be torch tensors")
    if x_hat.shape != x.shape:
        raise ValueError(f"{name}: prediction shape {tuple(x_hat.shape)} does not match "
                         f"target shape {tuple(x.shape)}")
    if x.dim() < 2:
        raise ValueError(f"{name}: expected a batch (B, ...) with at least 2 dims, "
                         f"got shape {tuple(x.shape)}")
    if not x.is_floating_point() or not x_hat.is_floating_point():
        raise TypeError(f"{name}: expected floating-point tensors, got {x_hat.dtype} and {x.dtype}")
    if len(x) == 0:
        raise ValueError(f"{name}: got an empty batch (B = 0): expected at least one example")
    if getattr(x, "checked_range", None) is None:         # not a batch fit cut: a caller's own pair
        _finite_given(x_hat, f"{name}: the prediction")
    return finite_range(x, f"{name}: the target")


def _finite_given(t: torch.Tensor, what: str) -> None:
    """Refuse NaN or inf in a tensor a caller gave. A tensor that requires grad was computed by
    a model in a training step, where :func:`companion.train.fit`'s guard stops on the first
    non-finite loss: it is not checked here, so that training pays for no extra pass."""
    if not t.requires_grad:
        finite_range(t, what)


def finite_range(x: torch.Tensor, what: str) -> tuple[float, float]:
    """(min, max) of ``x`` in one pass; raise a ValueError naming ``what`` if it holds NaN or
    inf (both propagate into the extremes). (0.0, 0.0) for an empty tensor.

    A batch that :func:`companion.train.fit` cut from data it has already checked carries the
    data's (min, max) as ``x.checked_range`` (finite by then); that range is returned without
    a second pass over the batch."""
    _tensor(x, what)
    known = getattr(x, "checked_range", None)
    if known is not None:
        return known
    if x.numel() == 0:
        return 0.0, 0.0
    lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} holds NaN or infinite values: expected finite data")
    return lo, hi


def sum_per_example(t: torch.Tensor) -> torch.Tensor:
    """(B, ...) → (B,): sum over every dimension but the first (the batch)."""
    _tensor(t, "sum_per_example: t")
    if t.dim() < 1:
        raise ValueError(f"sum_per_example expects a batch (B, ...), got a tensor of shape {tuple(t.shape)}")
    return t.flatten(start_dim=1).sum(dim=1)


#: The decoder likelihoods p_θ(x|z) of the book, by the name every model's config uses.
LIKELIHOODS = ("bernoulli", "gaussian")


def reconstruction(out: torch.Tensor, x: torch.Tensor, likelihood: str, *, std: float | None = None,
                   event_dims: int | None = None) -> torch.Tensor:
    r"""−log p_θ(x | decoder output) per example, in nats: the one implementation of the
    reconstruction term that every model of the book uses.

    * ``"bernoulli"``: ``out`` holds logits l and x ∈ [0, 1]; the cross-entropy
      −Σ_d [x_d log sigmoid(l_d) + (1 − x_d) log(1 − sigmoid(l_d))], computed from the logits for
      numerical stability (the survey's cross-entropy form of L_AE).
    * ``"gaussian"`` with ``std=σ``: ``out`` is the mean μ; the exact negative log-density
      Σ_d [(x_d − μ_d)² / (2σ²) + log σ + ½ log 2π] (what a VAE's ELBO needs).
    * ``"gaussian"`` without ``std``: the squared error ‖x − μ‖², the survey's L_AE. It is the
      negative log-density for σ² = ½ less its constant (d/2)·log π, so it ranks models exactly
      as that likelihood does.

    Args:
        out: decoder output (logits or mean), same shape as ``x``.
        x: targets, shape (B, ...).
        likelihood: one of :data:`LIKELIHOODS`.
        std: σ of the Gaussian (positive), or None for the squared error; a Bernoulli has none
            and ignores it.
        event_dims: how many trailing dimensions make one example (default: all but the first).
    Returns:
        a tensor of shape ``x.shape[:-event_dims]``: the sum over each example's dimensions.
    """
    lo, hi = _check_pair(out, x, "reconstruction")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}")
    event_dims = x.dim() - 1 if event_dims is None else event_dims
    if isinstance(event_dims, bool) or not isinstance(event_dims, int) or not 1 <= event_dims < x.dim():
        raise ValueError(f"event_dims must be an int in 1…{x.dim() - 1} for shape {tuple(x.shape)}, got {event_dims!r}")
    if likelihood == "bernoulli":
        if lo < 0 or hi > 1:
            raise ValueError(f"a Bernoulli likelihood needs targets in [0, 1] (got min {lo:.3g}, max {hi:.3g})")
        per_dim = F.binary_cross_entropy_with_logits(out, x, reduction="none")
    elif (std := plain(std)) is None:
        per_dim = (out - x) ** 2
    else:
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not std > 0 or not math.isfinite(std):
            raise ValueError(f"std must be a positive finite number or None, got {std!r}")
        per_dim = (x - out) ** 2 / (2 * std ** 2) + math.log(std) + 0.5 * math.log(2 * math.pi)
    return per_dim.reshape(*per_dim.shape[:x.dim() - event_dims], -1).sum(-1)


def decoder_mean(out: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The expected image x' under p_θ(x | out): sigmoid(logits) for Bernoulli, the mean for Gaussian."""
    _tensor(out, "decoder_mean: out")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}")
    return torch.sigmoid(out) if likelihood == "bernoulli" else out


def mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Squared error ‖x − x'‖², summed over dimensions, averaged over the batch.

    This is L_AE of the survey, (1/n) Σ_i ‖x⁽ⁱ⁾ − f_θ(g_φ(x⁽ⁱ⁾))‖², and up to constants the
    negative log-likelihood of a Gaussian decoder: :func:`reconstruction` with
    ``likelihood="gaussian"``, averaged over the batch.

    Args:
        x_hat: reconstruction, shape (B, ...).
        x: target, same shape.
    Returns:
        scalar tensor.
    """
    return reconstruction(x_hat, x, "gaussian").mean()


def bce_with_logits(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy of targets x ∈ [0, 1] under Bernoulli(sigmoid(logits)), summed over
    dimensions, averaged over the batch: :func:`reconstruction` with
    ``likelihood="bernoulli"``, averaged over the batch.

    Args:
        logits: pre-sigmoid decoder output, shape (B, ...).
        x: targets in [0, 1], same shape.
    Returns:
        scalar tensor (nats per example).
    """
    return reconstruction(logits, x, "bernoulli").mean()


def kl_bernoulli(rho: float | torch.Tensor, rho_hat: torch.Tensor, *, eps: float = 1e-7) -> torch.Tensor:
    r"""KL(Bernoulli(ρ) ‖ Bernoulli(ρ̂)) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)), elementwise.

    The sparsity penalty of the sparse autoencoder: ρ is the target mean activation, ρ̂ the
    observed mean activation of each hidden unit.

    Args:
        rho: target in (0, 1), a number or a tensor broadcastable to ``rho_hat``.
        rho_hat: mean activations in [0, 1], any shape; clamped to [eps, 1 − eps] so that
            the divergence stays finite.
    Returns:
        a tensor of the broadcast shape, in nats (no reduction).
    """
    if not isinstance(rho_hat, torch.Tensor):
        raise TypeError(f"kl_bernoulli: rho_hat must be a tensor, got {type(rho_hat).__name__}")
    if not rho_hat.is_floating_point():
        raise TypeError(f"kl_bernoulli: rho_hat must be floating point, got {rho_hat.dtype}")
    rho_t = torch.as_tensor(rho, dtype=rho_hat.dtype, device=rho_hat.device)
    try:
        torch.broadcast_shapes(rho_t.shape, rho_hat.shape)
    except RuntimeError:
        raise ValueError(f"kl_bernoulli: rho of shape {tuple(rho_t.shape)} does not broadcast to rho_hat of "
                         f"shape {tuple(rho_hat.shape)}: expected a number or a tensor of rho_hat's shape") from None
    if rho_t.numel() and not bool(((rho_t > 0) & (rho_t < 1)).all()):
        raise ValueError(f"kl_bernoulli: rho must lie strictly inside (0, 1), got {rho}")
    if torch.isnan(rho_hat).any():
        raise ValueError("kl_bernoulli: rho_hat holds NaN: the mean activations are not finite "
                         "(has training diverged?)")
    if rho_hat.numel() and not bool(((rho_hat >= 0) & (rho_hat <= 1)).all()):
        raise ValueError("kl_bernoulli: rho_hat must lie in [0, 1] (mean activations of sigmoid units)")
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return rho_t * torch.log(rho_t / rho_hat) + (1 - rho_t) * torch.log((1 - rho_t) / (1 - rho_hat))


def kl_normal_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL(N(μ, diag σ²) ‖ N(0, I)) in closed form, summed over latent dimensions, per example.

    KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1).

    Args:
        mu: means, shape (B, m).
        logvar: log-variances log σ², shape (B, m).
    Returns:
        (B,) tensor in nats.
    """
    _tensor(mu, "kl_normal_std_normal: mu")
    _tensor(logvar, "kl_normal_std_normal: logvar")
    _finite_given(mu, "kl_normal_std_normal: mu")
    _finite_given(logvar, "kl_normal_std_normal: logvar")
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(f"kl_normal_std_normal expects mu and logvar of the same shape (B, m), "
                         f"got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(dim=1)


def kl_normal_std_normal_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL(N(μ_j, σ_j²) ‖ N(0, 1)) of each latent dimension, per example: (B, m) in nats.

    ½ (μ_j² + σ_j² − log σ_j² − 1); summed over j it is :func:`kl_normal_std_normal`.
    """
    _tensor(mu, "kl_normal_std_normal_per_dim: mu")
    _tensor(logvar, "kl_normal_std_normal_per_dim: logvar")
    _finite_given(mu, "kl_normal_std_normal_per_dim: mu")
    _finite_given(logvar, "kl_normal_std_normal_per_dim: logvar")
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(f"kl_normal_std_normal_per_dim expects mu and logvar of the same shape (B, m), "
                         f"got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1)


def kl_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                     estimator: str = "mss") -> dict[str, torch.Tensor]:
    r"""The three parts of the average KL (Chen et al., 2018), estimated on a minibatch:

        E_x KL(q(z|x) ‖ p(z)) = I_q(x; z) + TC(z) + Σ_j KL(q(z_j) ‖ p(z_j)),

    index-code mutual information E[log q(z|x) − log q(z)], total correlation
    E[log q(z) − Σ_j log q(z_j)] and dimension-wise KL E[Σ_j log q(z_j) − log p(z)], where
    q(z) = (1/N) Σ_n q(z|x_n) is the aggregate posterior over a data set of N = ``dataset_size``
    examples. q(z_i) at each sample is estimated from the batch's M posteriors:

    * ``"mss"`` (minibatch stratified sampling): weight 1/N on the sample's own posterior and
      (N − 1)/(N (M − 1)) on each of the others: unbiased inside the log, and exact when the
      batch is the whole data set;
    * ``"mws"`` (minibatch weighted sampling): weight 1/(N M) on every posterior, as in Chen
      et al.'s main text; its TC is offset by a constant that depends on N and M, which leaves
      the gradient unchanged but not the value.

    Args:
        z: one sample of q(z|x) per example, (B, m); mu, logvar: its parameters, (B, m).
        dataset_size: N ≥ M.
    Returns:
        ``{"mi", "tc", "dim_kl"}``, each a scalar (nats, batch mean); they sum to the batch
        mean of log q(z|x) − log p(z), a one-sample estimate of the KL.
    """
    for t, name in ((z, "z"), (mu, "mu"), (logvar, "logvar")):
        _tensor(t, f"kl_decomposition: {name}")
        _finite_given(t, f"kl_decomposition: {name}")
    if z.dim() != 2 or z.shape != mu.shape or z.shape != logvar.shape:
        raise ValueError(f"kl_decomposition expects z, mu and logvar of one shape (B, m), got "
                         f"{tuple(z.shape)}, {tuple(mu.shape)} and {tuple(logvar.shape)}")
    m, dataset_size = len(z), plain(dataset_size)
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < max(m, 2):
        raise ValueError(f"dataset_size must be an int ≥ the batch size ({m}) and ≥ 2, got {dataset_size!r}")
    if estimator not in ("mss", "mws"):
        raise ValueError(f"estimator must be 'mss' or 'mws', got {estimator!r}")
    if m < 2:
        raise ValueError("kl_decomposition needs a batch of at least 2 examples")
    n, log2pi = dataset_size, math.log(2 * math.pi)
    # log q(z_i,d | x_j) for every pair (i, j) of the batch and dimension d: (B, B, m)
    log_q = -0.5 * (log2pi + logvar[None] + (z[:, None] - mu[None]) ** 2 * torch.exp(-logvar[None]))
    if estimator == "mws":
        log_w = torch.full((m, m), -math.log(n * m), dtype=z.dtype, device=z.device)
    else:
        log_w = torch.full((m, m), math.log((n - 1) / (n * (m - 1))), dtype=z.dtype, device=z.device)
        log_w.fill_diagonal_(-math.log(n))
    log_qz = torch.logsumexp(log_w + log_q.sum(2), dim=1)                      # log q(z_i)
    log_prod = torch.logsumexp(log_w[:, :, None] + log_q, dim=1).sum(1)        # Σ_d log q(z_i,d)
    log_qzx = log_q.diagonal(dim1=0, dim2=1).sum(0)                            # log q(z_i | x_i)
    log_pz = (-0.5 * (log2pi + z ** 2)).sum(1)                                 # log p(z_i)
    return {"mi": (log_qzx - log_qz).mean(), "tc": (log_qz - log_prod).mean(), "dim_kl": (log_prod - log_pz).mean()}


def controlled_capacity(kl: torch.Tensor, capacity: float | torch.Tensor, gamma: float) -> torch.Tensor:
    r"""Burgess et al. (2017)'s capacity term γ |KL − C|, which pulls the KL to a target C.

    Replaces β·KL in the β-VAE loss; C (nats) is raised from 0 during training, so the code
    may carry more information only as the decoder learns to use it.

    Args:
        kl: KL(q_φ(z|x) ‖ p(z)) in nats, a scalar (batch mean) or a (B,) tensor.
        capacity: the target C ≥ 0 in nats.
        gamma: the weight γ ≥ 0.
    Returns:
        a tensor of the shape of ``kl``.
    """
    if not isinstance(kl, torch.Tensor):
        raise TypeError(f"kl must be a tensor, got {type(kl).__name__}")
    c = torch.as_tensor(capacity, dtype=kl.dtype, device=kl.device)
    if c.dim() != 0 or not torch.isfinite(c) or c < 0:
        raise ValueError(f"capacity must be a finite number ≥ 0, got {capacity!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma >= 0 or gamma == float("inf"):
        raise ValueError(f"gamma must be a finite number ≥ 0, got {gamma!r}")
    return gamma * (kl - c).abs()


def contractive_penalty(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""‖J_g(x)‖²_F of a sigmoid layer z = sigmoid(W x + b), in closed form, per example.

    ∂z_j/∂x_l = z_j (1 − z_j) W_jl, so ‖J_g‖²_F = Σ_j (z_j (1 − z_j))² Σ_l W_jl².

    Args:
        h: the layer's activations z, shape (B, m), values in (0, 1).
        weight: its weight matrix W, shape (m, d).
    Returns:
        (B,) tensor: the squared Frobenius norm of each example's Jacobian.
    """
    _tensor(h, "contractive_penalty: h")
    _tensor(weight, "contractive_penalty: weight")
    if h.dim() != 2 or weight.dim() != 2 or h.shape[1] != weight.shape[0]:
        raise ValueError(f"contractive_penalty expects h (B, m) and W (m, d), got {tuple(h.shape)} "
                         f"and {tuple(weight.shape)}")
    return ((h * (1 - h)) ** 2) @ (weight ** 2).sum(dim=1)


def bits_per_dim(nats_per_example: float | torch.Tensor, dims: int) -> float:
    """Convert nats per example to bits per dimension: nats / (d · ln 2)."""
    if isinstance(nats_per_example, torch.Tensor):
        nats_per_example = nats_per_example.item()
    if isinstance(nats_per_example, bool) or not isinstance(nats_per_example, (int, float)):
        raise TypeError(f"bits_per_dim: nats_per_example must be a number, got {type(nats_per_example).__name__}")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be an int ≥ 1, got {dims!r}")
    return float(nats_per_example) / (dims * math.log(2.0))
