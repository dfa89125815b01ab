r"""The variational autoencoder (Kingma & Welling, 2014).

A probabilistic encoder q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)), a probabilistic decoder
p_θ(x|z) (Bernoulli pixels for data in [0, 1], or a Gaussian) and the prior p(z) = N(0, I).
Training minimises the negative evidence lower bound

    L_VAE = −E_{z∼q_φ(z|x)} log p_θ(x|z) + β · KL(q_φ(z|x) ‖ p(z)),   β = 1 for the VAE,

with one reparameterised sample z = μ + σ ⊙ ε, ε ∼ N(0, I), and the KL in closed form.
Under the book's reduction convention both terms are nats per example. β > 1 is the β-VAE
of Higgins et al. (2017). With ``capacity`` set, β·KL is replaced by Burgess et al. (2017)'s
γ |KL − C| where the target C grows linearly from 0 to ``capacity`` over ``capacity_steps``
training steps. With ``tc_weight`` set it is Chen et al. (2018)'s β-TCVAE: the KL is split
into index-code mutual information, total correlation and dimension-wise KL
(:func:`companion.losses.kl_decomposition`), and only the total correlation is weighted by
``tc_weight``; the other two keep the weight β.

Two cures for posterior collapse, for the β objective: ``kl_warmup_steps`` anneals the KL's
weight linearly from 0 to β over that many training steps (Bowman et al. 2016), and
``free_bits`` κ replaces the KL by Σ_j max(κ, KL_j), KL_j the batch's mean KL of dimension j,
so a dimension pays nothing, and is not pushed to the prior, until it carries κ nats
(Kingma et al. 2016). With ``binarize`` every training batch is resampled as x ∼ Bernoulli(x)
(dynamic binarisation, as in Burda et al. 2016's MNIST setting).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from companion import losses
from companion.models.base import EncoderDecoder, Output, check_target_span, choice, plain_fields, positive_int
from companion.nn import MLP, activation


@dataclass
class VAEConfig:
    """Hyper-parameters of :class:`VAE`; every field is validated.

    Attributes:
        image_shape: (C, H, W) of the inputs.
        latent_size: dimension m of z (the code size).
        hidden: hidden layer sizes of the MLP encoder (mirrored in the decoder).
        act: activation of the hidden layers.
        likelihood: ``"bernoulli"`` (inputs must lie in [0, 1]) or ``"gaussian"``.
        decoder_std: σ of the Gaussian likelihood (ignored for Bernoulli).
        beta: weight β ≥ 0 of the KL term (1: the VAE; chapter 7 varies it).
        capacity: None for the β objective; otherwise the final target C_max (nats) of the
            controlled-capacity objective γ |KL − C|, which then replaces β·KL.
        gamma: the weight γ of the controlled-capacity objective.
        capacity_steps: training steps over which C rises linearly from 0 to ``capacity``.
        tc_weight: None for the β or capacity objective; otherwise the β-TCVAE objective
            recon + β (MI + dimension-wise KL) + tc_weight · TC, each part estimated on the batch.
        dataset_size: N, the number of training examples the β-TCVAE's estimate of q(z)
            assumes (needed with ``tc_weight``).
        kl_warmup_steps: KL annealing: the KL's weight rises linearly from 0 to β over this
            many training steps (0: no annealing). β objective only.
        free_bits: κ ≥ 0, nats per latent dimension: the KL term becomes Σ_j max(κ, KL_j) with
            KL_j averaged over the batch (0: the plain KL). β objective only.
        binarize: resample each training batch as x ∼ Bernoulli(x) (dynamic binarisation;
            Bernoulli likelihood only). Evaluation mode leaves the inputs as given.
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_size: int = 2
    hidden: tuple[int, ...] = (400,)
    act: str = "relu"
    likelihood: str = "bernoulli"
    decoder_std: float = 0.1
    beta: float = 1.0
    capacity: float | None = None
    gamma: float = 1000.0
    capacity_steps: int = 10_000
    tc_weight: float | None = None
    dataset_size: int | None = None
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    binarize: bool = False

    def __post_init__(self) -> None:
        plain_fields(self, one_tuple=("hidden",))
        self.image_shape, self.hidden = tuple(self.image_shape), tuple(self.hidden)
        if len(self.image_shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                                             for s in self.image_shape):
            raise ValueError(f"VAEConfig.image_shape must be (C, H, W) of positive ints, got {self.image_shape}")
        positive_int(self, "latent_size")
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"VAEConfig.hidden must hold positive ints, got {self.hidden}")
        activation(self.act)
        choice(self, "likelihood", losses.LIKELIHOODS)
        for name in ("decoder_std", "beta", "gamma") + (("capacity",) if self.capacity is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"VAEConfig.{name} must be a finite number, got {v!r}")
        if self.decoder_std <= 0:
            raise ValueError(f"VAEConfig.decoder_std must be > 0, got {self.decoder_std}")
        for name in ("beta", "gamma", "capacity"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"VAEConfig.{name} must be ≥ 0, got {getattr(self, name)}")
        positive_int(self, "capacity_steps")
        if self.tc_weight is not None:
            v = self.tc_weight
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"VAEConfig.tc_weight must be a finite number ≥ 0, got {v!r}")
            if self.capacity is not None:
                raise ValueError("VAEConfig: choose the capacity objective or the β-TCVAE (tc_weight), not both")
            if isinstance(self.dataset_size, bool) or not isinstance(self.dataset_size, int) or self.dataset_size < 2:
                raise ValueError(f"VAEConfig.dataset_size must be the number of training examples (an int ≥ 2) "
                                 f"when tc_weight is set, got {self.dataset_size!r}")

        if isinstance(self.kl_warmup_steps, bool) or not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ValueError(f"VAEConfig.kl_warmup_steps must be an int ≥ 0, got {self.kl_warmup_steps!r}")
        v = self.free_bits
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"VAEConfig.free_bits must be a finite number ≥ 0 (nats per dimension), got {v!r}")
        if (self.kl_warmup_steps or self.free_bits) and (self.capacity is not None or self.tc_weight is not None):
            raise ValueError("VAEConfig: kl_warmup_steps and free_bits apply to the β objective, "
                             "not with capacity or tc_weight")
        if not isinstance(self.binarize, bool):
            raise ValueError(f"VAEConfig.binarize must be True or False, got {self.binarize!r}")
        if self.binarize and self.likelihood != "bernoulli":
            raise ValueError("VAEConfig.binarize needs the Bernoulli likelihood")

    @property
    def input_dim(self) -> int:
        c, h, w = self.image_shape
        return c * h * w


class VAE(EncoderDecoder):
    """Gaussian encoder q_φ(z|x), Bernoulli or Gaussian decoder p_θ(x|z), prior N(0, I).

    ``forward(x)`` returns an :class:`Output` with ``terms`` ``recon`` (−log p_θ(x|z) for one
    sample z) and ``kl`` (KL(q_φ(z|x) ‖ p(z)), closed form), ``loss = recon + β·kl``,
    ``x_hat`` the decoder's mean and ``z`` the sample. With ``config.capacity`` set,
    ``loss = recon + γ |kl − C|`` and ``stats`` holds the current target ``capacity``.
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        # q_φ(z|x): x (B, d) → [μ, log σ²] (B, 2m)
        self.encoder = MLP(cfg.input_dim, cfg.hidden, 2 * cfg.latent_size, act=cfg.act)
        # p_θ(x|z): z (B, m) → logits or means (B, d)
        self.decoder = nn.Sequential(MLP(cfg.latent_size, cfg.hidden[::-1], cfg.input_dim, act=cfg.act),
                                     nn.Unflatten(1, cfg.image_shape))
        # Training steps taken (advanced by forward in training mode), for the capacity and KL schedules.
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def capacity_at(self, t: float) -> float:
        """C(t) = capacity · min(1, t / capacity_steps) at training step ``t`` (0 if unused)."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0:
            raise ValueError(f"t must be a step count ≥ 0, got {t!r}")
        cfg = self.config
        if cfg.capacity is None:
            return 0.0
        return cfg.capacity * min(1.0, t / cfg.capacity_steps)

    def current_capacity(self) -> float:
        """C(t) at the current step t (:meth:`capacity_at` of the steps trained so far)."""
        return self.capacity_at(self.steps.item())

    def kl_weight(self) -> float:
        """The KL's weight at the current step: β, or β · min(1, t / kl_warmup_steps) while
        annealing."""
        cfg = self.config
        if not cfg.kl_warmup_steps:
            return cfg.beta
        return cfg.beta * min(1.0, self.steps.item() / cfg.kl_warmup_steps)

    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q_φ(z|x), each (B, m)."""
        self.check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> Independent:
        """q_φ(z|x) = N(μ, diag σ²) as a distribution over (B, m) with event shape (m,)."""
        mu, logvar = self.posterior_params(x)
        return Independent(Normal(mu, (0.5 * logvar).exp()), 1)

    def prior(self, n: int = 1) -> Independent:
        """p(z) = N(0, I)."""
        k = self.config.latent_size
        p = next(self.parameters())
        return Independent(Normal(torch.zeros(n, k, device=p.device), torch.ones(n, k, device=p.device)), 1)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """A point code: the posterior mean μ (B, m)."""
        return self.encode(x).mean

    def decode_mean(self, z) -> torch.Tensor:
        """The expected image of codes ``z`` (what :meth:`decode` takes): ``decode(z).mean``."""
        return self.decode(z).mean

    def decode(self, z: torch.Tensor | Distribution) -> Independent:
        """p_θ(x|z) over images, event shape (C, H, W); ``.mean`` is the expected image.
        ``z`` is a batch of codes (B, m), or the q_φ(z|x) that :meth:`encode` returns, in
        which case its mean is decoded."""
        if isinstance(z, Distribution):
            z = z.mean
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.config.latent_size:
            raise ValueError(f"expected codes of shape (B, {self.config.latent_size}), got {tuple(getattr(z, 'shape', ()))}")
        out = self.decoder(z)
        if self.config.likelihood == "bernoulli":
            return Independent(Bernoulli(logits=out, validate_args=False), 3)
        return Independent(Normal(out, self.config.decoder_std), 3)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> Output:
        cfg = self.config
        if cfg.binarize and self.training:                        # dynamic binarisation: x ∼ Bernoulli(x)
            x = torch.bernoulli(x)
            target = None if target is None else torch.bernoulli(target)
        mu, logvar = self.posterior_params(x)                     # (B, m) each
        if cfg.likelihood == "gaussian":
            check_target_span(self, x if target is None else target)
        eps = torch.randn_like(mu)
        z = mu + (0.5 * logvar).exp() * eps                       # reparameterisation: z = μ + σ ⊙ ε
        out, lik = self.decoder(z), cfg.likelihood
        recon = losses.reconstruction(out, x if target is None else target, lik,   # −log p_θ(x|z), nats/example
                                      std=cfg.decoder_std).mean()
        kl = losses.kl_normal_std_normal(mu, logvar).mean()      # KL(q ‖ p(z)), closed form
        terms, stats = {"recon": recon, "kl": kl}, {}
        if cfg.tc_weight is not None and len(z) > 1:              # β-TCVAE: the KL in three parts
            parts = losses.kl_decomposition(z, mu, logvar, max(cfg.dataset_size, len(z)))
            terms.update(parts)
            loss = recon + cfg.beta * (parts["mi"] + parts["dim_kl"]) + cfg.tc_weight * parts["tc"]
        elif cfg.capacity is None:
            penalty = kl
            if cfg.free_bits:                                     # free bits: Σ_j max(κ, KL_j), KL_j the batch mean
                penalty = losses.kl_normal_std_normal_per_dim(mu, logvar).mean(0).clamp(min=cfg.free_bits).sum()
            weight = self.kl_weight()
            loss = recon + weight * penalty                                       # L_BETA
            if cfg.kl_warmup_steps:
                stats["kl_weight"] = torch.tensor(weight, dtype=kl.dtype, device=kl.device)
        else:
            c = self.current_capacity()
            loss = recon + losses.controlled_capacity(kl, c, cfg.gamma)   # recon + γ|KL − C|
            stats["capacity"] = torch.tensor(c, dtype=kl.dtype, device=kl.device)
        scheduled = cfg.capacity is not None or cfg.kl_warmup_steps
        if scheduled and self.training and torch.is_grad_enabled() and torch.isfinite(loss):   # finite batches only
            self.steps += 1
        return Output(loss=loss, terms=terms, stats=stats, x_hat=losses.decoder_mean(out, lik), z=z)
