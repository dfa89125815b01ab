r"""Vector quantisation and the VQ-VAE (van den Oord et al., 2017).

The encoder g_φ maps an image to a grid of vectors z_e = g_φ(x) ∈ R^D; each is replaced by
its nearest code vector e_c of a codebook of K vectors,

    z_q = e_{c*},   c* = argmin_c ‖z_e − e_c‖₂,

and the decoder f_θ reconstructs the image from the grid of z_q. The loss is

    L = −log p_θ(x | z_q) + ‖sg[z_e] − e_{c*}‖² + β ‖z_e − sg[e_{c*}]‖²
          reconstruction      VQ (codebook)         commitment

where sg is the stop-gradient. argmin has no gradient; the straight-through estimator
copies the gradient at z_q to z_e: z_q = z_e + sg[e_{c*} − z_e]. With ``ema=True`` the
codebook is instead the running mean of the encoder outputs assigned to each code: with S_c
the encoder outputs of the batch that chose code c,

    N_c ← γ N_c + (1 − γ) |S_c|,   a_c ← γ a_c + (1 − γ) Σ_{z ∈ S_c} z,   e_c = a_c / N_c,

and the VQ term is reported but not optimised (chapter 8's notation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from companion import losses
from companion.models.base import (EncoderDecoder, Output, check_grid, check_target_span, choice, finite_at_least,
                                   image_shape, in_open_unit_interval, plain_fields, positive_int)
from companion.nn import ConvDown, ConvUp


class Quantized(NamedTuple):
    """What :class:`VectorQuantizer` returns.

    Attributes:
        z_q: quantised grid (B, D, H, W) with the straight-through gradient to z_e.
        indices: chosen code of each position, (B, H, W) int64.
        vq: ‖sg[z_e] − e_c‖² of each position's chosen code c, summed over positions and D,
            mean over the batch.
        commitment: ‖z_e − sg[e_c]‖², same reduction (unweighted: the model applies β).
        perplexity: exp(entropy) of the codes used in this batch.
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    vq: torch.Tensor
    commitment: torch.Tensor
    perplexity: torch.Tensor


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code vector for each row: z (N, D), codebook (K, D) → (N,).

    ‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖², computed as one matrix product (no loop over codes).
    """
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1]:
        raise ValueError(f"nearest_code expects z (N, D) and codebook (K, D) with the same D, "
                         f"got {tuple(z.shape)} and {tuple(codebook.shape)}")
    d = z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)   # (N, K)
    return d.argmin(dim=1)


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(−Σ_c p_c log p_c) of code counts (K,): K when all codes are used equally, 1 when one is."""
    if not isinstance(counts, torch.Tensor) or counts.dim() != 1:
        raise ValueError(f"perplexity expects code counts (K,), got {tuple(getattr(counts, 'shape', ())) or counts!r}")
    if (counts < 0).any():
        raise ValueError("perplexity expects non-negative counts")
    p = counts.double() / counts.sum().clamp(min=1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-30))).sum()).to(torch.float32)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation into K learned code vectors of size D.

    Args:
        num_codes: K ≥ 1.
        code_dim: D ≥ 1; must equal the channels of the encoder output.
        ema: learn the codebook by exponential moving averages instead of the VQ loss.
        decay: γ ∈ (0, 1) of the moving averages.
        eps: Laplace smoothing of the counts N_c, so that an unused code never divides by 0.
        restart_dead: re-initialise codes whose usage (a moving average of their share of the
            assignments, decay ``usage_decay``) falls below ``dead_fraction`` of the uniform share
            1/K, from encoder outputs of the current batch.
        dead_fraction: the threshold of ``restart_dead``.
        usage_decay: decay of the usage average (0.9: a code unused for ~30 steps is dead).
    """

    def __init__(self, num_codes: int, code_dim: int, *, ema: bool = False, decay: float = 0.99,
                 eps: float = 1e-5, restart_dead: bool = False, dead_fraction: float = 0.1,
                 usage_decay: float = 0.9) -> None:
        super().__init__()
        for name, v in (("num_codes", num_codes), ("code_dim", code_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"VectorQuantizer.{name} must be an int ≥ 1, got {v!r}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
            raise ValueError(f"VectorQuantizer.decay (γ) must lie in (0, 1), got {decay!r}")
        if not eps > 0:
            raise ValueError(f"VectorQuantizer.eps must be > 0, got {eps!r}")
        if not 0 < usage_decay < 1:
            raise ValueError(f"VectorQuantizer.usage_decay must lie in (0, 1), got {usage_decay!r}")
        if not 0 <= dead_fraction < 1:
            raise ValueError(f"VectorQuantizer.dead_fraction must lie in [0, 1), got {dead_fraction!r}")
        self.num_codes, self.code_dim, self.ema = num_codes, code_dim, ema
        self.decay, self.eps = float(decay), float(eps)
        self.restart_dead, self.dead_fraction = restart_dead, float(dead_fraction)
        self.usage_decay = float(usage_decay)
        init = torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes)
        if ema:
            # e_c = a_c / N_c is a buffer: no gradient reaches it.
            self.register_buffer("codebook", init.clone())
            self.register_buffer("ema_count", torch.ones(num_codes))          # N_c
            self.register_buffer("ema_sum", init.clone())                     # a_c
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("usage", torch.full((num_codes,), 1.0 / num_codes))   # moving average of p_c
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    @property
    def learned_by_loss(self) -> bool:
        """Whether the VQ term trains the codebook (else moving averages do, and it is only reported)."""
        return not self.ema

    def extra_repr(self) -> str:
        return (f"K={self.num_codes}, D={self.code_dim}, ema={self.ema}, decay={self.decay}, "
                f"restart_dead={self.restart_dead}")

    def forward(self, z_e: torch.Tensor, *, update: bool = True) -> Quantized:
        """Quantise ``z_e`` (B, D, H, W). In training mode, with gradients on and ``update``
        true (the training step), the codebook's moving averages and usage are updated; a
        read such as ``encode`` passes ``update=False`` and changes nothing."""
        if z_e.dim() != 4 or z_e.shape[1] != self.code_dim:
            raise ValueError(f"VectorQuantizer expects z_e of shape (B, D={self.code_dim}, H, W), "
                             f"got {tuple(z_e.shape)}")
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)                       # (N, D), N = B·H·W
        with torch.no_grad():
            idx = nearest_code(flat, self.codebook)                          # (N,)
            counts = torch.bincount(idx, minlength=self.num_codes).to(flat.dtype)
        e_c = self.codebook.index_select(0, idx)     # (N, D); not codebook[idx], whose CPU gradient sums in a racy order
        vq = (flat.detach() - e_c).pow(2).sum() / b                          # ‖sg[z_e] − e_c‖²
        commitment = (flat - e_c.detach()).pow(2).sum() / b                  # ‖z_e − sg[e_c]‖²
        z_q = flat + (e_c - flat).detach()                                   # straight-through
        if update and self.training and torch.is_grad_enabled() and torch.isfinite(flat).all():
            self._update(flat.detach(), idx, counts)        # never from a NaN/inf batch: buffers stay as they were
        z_q = z_q.view(b, h, w, d).permute(0, 3, 1, 2)
        return Quantized(z_q, idx.view(b, h, w), vq, commitment, perplexity(counts))

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor) -> None:
        u = self.usage_decay
        self.usage.mul_(u).add_((1 - u) * counts / counts.sum())
        g = self.decay
        if self.ema:
            sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)   # the sum over S_c
            self.ema_count.mul_(g).add_((1 - g) * counts)                    # N_c
            self.ema_sum.mul_(g).add_((1 - g) * sums)                        # a_c
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
            self.codebook.copy_(self.ema_sum / smoothed[:, None])            # e_c = a_c / N_c
        if self.restart_dead:
            dead = self.usage < self.dead_fraction / self.num_codes
            if dead.any():
                pick = torch.randint(len(flat), (int(dead.sum()),), device=flat.device)
                fresh = flat[pick]
                self.codebook.data[dead] = fresh
                if self.ema:                                   # the restarted code counts as one vector
                    self.ema_count[dead] = 1.0
                    self.ema_sum[dead] = fresh
                self.usage[dead] = 1.0 / self.num_codes
                self.restarts += int(dead.sum())


def check_codebook_fields(config, sizes: tuple[str, ...], rules: tuple[str, ...] = ("loss", "ema", "ema+restart")) -> None:
    """The checks that VQ-VAE configs share: codebook sizes, β, codebook rule, γ, likelihood."""
    for name in sizes:
        positive_int(config, name)
    finite_at_least(config, "beta")
    choice(config, "codebook", rules)
    in_open_unit_interval(config, "decay")
    choice(config, "likelihood", losses.LIKELIHOODS)


def pixel_likelihood(out: torch.Tensor, x: torch.Tensor, likelihood: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(−log p(x | decoder output) in nats per image, the expected image), by
    :func:`companion.losses.reconstruction`: Bernoulli pixels from logits, or a Gaussian as the
    squared error (the paper's)."""
    return losses.reconstruction(out, x, likelihood).mean(), losses.decoder_mean(out, likelihood)


@dataclass
class VQVAEConfig:
    """Hyper-parameters of :class:`VQVAE`; every field is validated.

    Attributes:
        image_shape: (C, H, W); H and W divisible by 2**len(channels).
        channels: channels of the stride-2 convolutions of the encoder (mirrored in the decoder).
        num_codes: K, the codebook size (64 unless given).
        code_dim: D, the size of each code vector (16 unless given).
        beta: weight β of the commitment loss (0.25 in the paper).
        codebook: ``"loss"`` (learned by the VQ loss), ``"ema"``, ``"ema+restart"``, or
            ``"fsq"``: no codebook, finite scalar quantisation to the grid ``levels``
            (:mod:`companion.models.fsq`); then ``num_codes`` and ``code_dim`` follow from it, and
            ``beta`` and ``decay`` have nothing to weigh (its VQ and commitment terms are 0).
        decay: γ of the EMA codebook.
        likelihood: ``"bernoulli"`` (cross-entropy on pixels in [0, 1]) or ``"gaussian"``
            (squared error, as in the paper).
        levels: ℓ_1 … ℓ_D of ``codebook="fsq"`` (each ≥ 2); empty otherwise.
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    channels: tuple[int, ...] = (32, 64)
    num_codes: int | None = None       # 64 for a learned codebook; from ``levels`` for FSQ
    code_dim: int | None = None        # 16 for a learned codebook; from ``levels`` for FSQ
    beta: float = 0.25
    codebook: str = "ema"
    decay: float = 0.99
    likelihood: str = "bernoulli"
    levels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        plain_fields(self, one_tuple=("channels",))
        if self.codebook == "fsq":
            from companion.models.fsq import check_levels

            self.levels = check_levels(self.levels)
            grid = {"num_codes": math.prod(self.levels), "code_dim": len(self.levels)}
            for name, value in grid.items():
                if getattr(self, name) not in (None, value):
                    raise ValueError(f"VQVAEConfig.{name} follows from levels={self.levels} with codebook='fsq' "
                                     f"({value}); leave it out, got {getattr(self, name)!r}")
                setattr(self, name, value)
        elif self.levels:
            raise ValueError(f"VQVAEConfig.levels is the grid of codebook='fsq', got levels={self.levels} "
                             f"with codebook={self.codebook!r}")
        else:
            self.num_codes = 64 if self.num_codes is None else self.num_codes
            self.code_dim = 16 if self.code_dim is None else self.code_dim
        image_shape(self)
        self.channels = tuple(self.channels)
        if not self.channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels):
            raise ValueError(f"VQVAEConfig.channels must be positive ints, got {self.channels}")
        check_codebook_fields(self, ("num_codes", "code_dim"), ("loss", "ema", "ema+restart", "fsq"))
        n = len(self.channels)
        if self.image_shape[1] % (1 << n) or self.image_shape[2] % (1 << n):
            raise ValueError(f"VQVAEConfig.image_shape {self.image_shape}: H and W must be divisible by "
                             f"2**{n} for {n} stride-2 layers")


class VQVAE(EncoderDecoder):
    """Conv encoder → grid of z_e → :class:`VectorQuantizer` → conv decoder.

    ``forward(x)`` returns an :class:`Output` with ``terms`` ``recon`` (−log p(x|z_q), nats
    per image), ``vq`` and ``commitment``, ``stats`` ``perplexity`` (of the batch), and
    ``loss = recon + vq + β·commitment`` (without ``vq`` for an EMA codebook); ``z`` holds the
    code indices (B, h, w).
    """

    config_class = VQVAEConfig

    def __init__(self, config: VQVAEConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        self.encoder = ConvDown(cfg.image_shape, cfg.channels, cfg.code_dim)              # g_φ: x → z_e
        if cfg.codebook == "fsq":
            from companion.models.fsq import FiniteScalarQuantizer

            self.quantizer = FiniteScalarQuantizer(cfg.levels)
        else:
            self.quantizer = VectorQuantizer(cfg.num_codes, cfg.code_dim, ema=cfg.codebook != "loss",
                                             decay=cfg.decay, restart_dead=cfg.codebook == "ema+restart")
        self.decoder = ConvUp(cfg.code_dim, cfg.channels[::-1], cfg.image_shape[0])       # f_θ: z_q → x
        self.grid_shape = self.encoder.out_shape[1:]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid of each image, (B, h, w) int64 indices into the codebook."""
        self.check_images(x)
        return self.quantizer(self.encoder(x), update=False).indices          # a read: the codebook stays

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) (means in [0, 1] for Bernoulli pixels) from code grids (B, h, w)."""
        check_grid(self, indices, tuple(self.grid_shape), self.config.num_codes, "code indices")
        z_q = self.quantizer.codebook[indices].permute(0, 3, 1, 2)             # (B, D, h, w)
        out = self.decoder(z_q)
        return losses.decoder_mean(out, self.config.likelihood)

    def forward(self, x: torch.Tensor) -> Output:
        self.check_images(x)
        if self.config.likelihood == "gaussian":
            check_target_span(self, x)
        z_e = self.encoder(x)                                                # (B, D, h, w)
        q = self.quantizer(z_e)
        recon, x_hat = pixel_likelihood(self.decoder(q.z_q), x, self.config.likelihood)
        loss = recon + self.config.beta * q.commitment
        if self.quantizer.learned_by_loss:
            loss = loss + q.vq
        terms = {"recon": recon, "vq": q.vq, "commitment": q.commitment}
        return Output(loss=loss, terms=terms, stats={"perplexity": q.perplexity}, x_hat=x_hat, z=q.indices)
