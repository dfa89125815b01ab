r"""The hierarchical VQ-VAE of VQ-VAE-2 (Razavi et al., 2019), stage 1.

Two levels of discrete codes, each with its own codebook (:class:`VectorQuantizer` of
chapter 8):

* the **bottom** encoder downsamples the image by 4: h_b = E_b(x), an (H/4)×(W/4) map;
* the **top** encoder downsamples h_b by a further 2 and quantises: e_top = VQ_t(E_t(h_b));
* the bottom code is **conditioned on the top one**: the top codes are decoded back to the
  bottom resolution and concatenated with h_b before quantising, e_bot = VQ_b(W [h_b, D_t(e_top)]);
* the decoder sees both levels: x̂ = D([e_bot, U(e_top)]), U upsampling the top codes by 2.

The top level has 4× fewer positions, so it can only hold global information. Nothing in
this objective makes the decoder *rely* on it, though: a bottom level with enough codes can
describe the whole image, and the decoder may then ignore the top (chapter 9 measures this).
``top_weight`` > 0 adds a second reconstruction from the top level alone (bottom vectors set
to zero), −log p(x | e_top, 0), which forces the top codes to carry the global shape and the
decoder to build on them; the bottom codes are then left with the detail.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from companion import losses
from companion.models.base import (EncoderDecoder, Output, check_grid, check_target_span, finite_at_least,
                                   image_shape, model_device, plain_fields)
from companion.models.pixelcnn import repeat_codes
from companion.models.vq import VectorQuantizer, check_codebook_fields, pixel_likelihood
from companion.nn import ConvDown, ConvUp, activation


class Codes(NamedTuple):
    """The two code grids of a batch: ``top`` (B, H/8, W/8) and ``bottom`` (B, H/4, W/4), int64."""

    top: torch.Tensor
    bottom: torch.Tensor


@dataclass
class VQVAE2Config:
    """Hyper-parameters of :class:`VQVAE2`; every field is validated.

    Attributes:
        image_shape: (C, H, W), H and W divisible by 8.
        channels: channels of the two stride-2 convolutions of the bottom encoder (mirrored in
            the decoder); the top encoder's one stride-2 convolution uses ``channels[-1]``.
        num_codes_top, num_codes_bottom: codebook sizes K_top and K_bottom.
        code_dim: D of both codebooks.
        beta: weight of the commitment losses.
        codebook: ``"loss"``, ``"ema"`` or ``"ema+restart"`` (both levels), as in :class:`VQVAEConfig`.
        decay: γ of the EMA codebooks.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        top_weight: weight of the top-level-only reconstruction in the loss (0: the objective of
            Razavi et al.; the term ``recon_top`` is reported either way).
    """

    image_shape: tuple[int, int, int] = (1, 32, 32)
    channels: tuple[int, int] = (32, 64)
    num_codes_top: int = 64
    num_codes_bottom: int = 64
    code_dim: int = 16
    beta: float = 0.25
    codebook: str = "ema+restart"
    decay: float = 0.99
    likelihood: str = "bernoulli"
    top_weight: float = 0.0

    def __post_init__(self) -> None:
        plain_fields(self, one_tuple=("channels",))
        image_shape(self)
        self.channels = tuple(self.channels)
        if self.image_shape[1] % 8 or self.image_shape[2] % 8:
            raise ValueError(f"VQVAE2Config.image_shape {self.image_shape}: H and W must be divisible by 8")
        if len(self.channels) != 2 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels):
            raise ValueError(f"VQVAE2Config.channels must be two positive ints, got {self.channels}")
        check_codebook_fields(self, ("num_codes_top", "num_codes_bottom", "code_dim"))
        finite_at_least(self, "top_weight")


class VQVAE2(EncoderDecoder):
    """Two-level VQ-VAE. ``forward(x)`` returns an :class:`Output` with ``terms`` ``recon``,
    ``recon_top`` (from the top level alone), ``vq_top``, ``vq_bottom``, ``commitment_top``, ``commitment_bottom`` (``stats``: ``perplexity_top``
    and ``perplexity_bottom``); ``loss = recon + top_weight·recon_top + β·(commitments) (+ VQ terms for a loss-learned
    codebook)``; ``z`` holds the bottom codes (``encode`` gives both levels)."""

    config_class = VQVAE2Config

    def __init__(self, config: VQVAE2Config | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        c, h, w = cfg.image_shape
        hidden, d = cfg.channels[-1], cfg.code_dim
        ema, restart = cfg.codebook != "loss", cfg.codebook == "ema+restart"
        self.encoder_bottom = ConvDown(cfg.image_shape, cfg.channels, hidden)                 # x → h_b, /4
        self.encoder_top = ConvDown((hidden, h // 4, w // 4), (hidden,), d)                  # h_b → z_top, /2
        self.quantizer_top = VectorQuantizer(cfg.num_codes_top, d, ema=ema, decay=cfg.decay, restart_dead=restart)
        self.decoder_top = ConvUp(d, (hidden,), d)                                           # e_top → bottom size
        self.condition = nn.Sequential(activation("relu"), nn.Conv2d(hidden + d, d, kernel_size=1))
        self.quantizer_bottom = VectorQuantizer(cfg.num_codes_bottom, d, ema=ema, decay=cfg.decay,
                                                restart_dead=restart)
        self.upsample_top = nn.ConvTranspose2d(d, d, kernel_size=4, stride=2, padding=1)
        self.decoder = ConvUp(2 * d, cfg.channels[::-1], c)                                  # [e_bot, U e_top] → x

    def _quantize(self, x: torch.Tensor, update: bool = True):
        """Both levels' quantisation; ``update=False`` for reads (the codebooks stay)."""
        h_b = self.encoder_bottom(x)                                   # (B, hidden, H/4, W/4)
        q_top = self.quantizer_top(self.encoder_top(h_b), update=update)              # (B, D, H/8, W/8)
        z_bottom = self.condition(torch.cat([h_b, self.decoder_top(q_top.z_q)], dim=1))
        q_bottom = self.quantizer_bottom(z_bottom, update=update)                     # (B, D, H/4, W/4)
        return q_top, q_bottom

    def _decode_vectors(self, e_top: torch.Tensor, e_bottom: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([e_bottom, self.upsample_top(e_top)], dim=1))

    def encode(self, x: torch.Tensor) -> Codes:
        """Both code grids of each image (a read: the codebooks stay as they are)."""
        self.check_images(x)
        q_top, q_bottom = self._quantize(x, update=False)
        return Codes(q_top.indices, q_bottom.indices)

    def decode(self, top: torch.Tensor | Codes, bottom: torch.Tensor | None = None) -> torch.Tensor:
        """Images from code grids: the :class:`Codes` that :meth:`encode` returns, or the
        ``top`` and ``bottom`` grids; with ``bottom=None`` the bottom level is left empty (zero
        vectors), which shows what the top level alone carries."""
        if isinstance(top, Codes):
            if bottom is not None:
                raise TypeError("pass either Codes or the top and bottom grids, not both")
            top, bottom = top.top, top.bottom
        cfg = self.config
        _, h, w = cfg.image_shape
        for name, idx, k, grid in (("top", top, cfg.num_codes_top, (h // 8, w // 8)),
                                   ("bottom", bottom, cfg.num_codes_bottom, (h // 4, w // 4))):
            if idx is not None:
                check_grid(self, idx, grid, k, f"{name} codes")
        e_top = self.quantizer_top.codebook[top].permute(0, 3, 1, 2)
        if bottom is None:
            b, _, h, w = e_top.shape
            e_bottom = e_top.new_zeros(b, cfg.code_dim, 2 * h, 2 * w)
        else:
            if bottom.shape[0] != top.shape[0] or bottom.shape[1:] != (2 * top.shape[1], 2 * top.shape[2]):
                raise ValueError(f"bottom codes {tuple(bottom.shape)} must be twice the size of top codes "
                                 f"{tuple(top.shape)}")
            e_bottom = self.quantizer_bottom.codebook[bottom].permute(0, 3, 1, 2)
        out = self._decode_vectors(e_top, e_bottom)
        return losses.decoder_mean(out, cfg.likelihood)

    @torch.no_grad()
    def sample(self, top_prior: nn.Module, bottom_prior: nn.Module, n: int, *, temperature: float = 1.0,
               top: torch.Tensor | None = None, generator: torch.Generator | None = None) -> tuple[torch.Tensor, Codes]:
        """Ancestral sampling (Razavi et al. 2019, Fig. 12, right): top codes from ``top_prior``
        (or the given ``top`` grids, (n, h, w)), bottom codes from ``bottom_prior`` given them
        (the top codes repeated to the bottom grid's size), then the decoder. Each prior is a
        conditional autoregressive model with ``sample(n, grid_shape, …, cond=…)`` (a
        :class:`PixelSNAIL`). Returns ``(images, Codes)``, on the CPU."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if top is None:
            top = top_prior.sample(n, top_prior.grid_shape, generator=generator, temperature=temperature)
        elif not isinstance(top, torch.Tensor) or top.dim() != 3 or len(top) != n:
            raise ValueError(f"expected {n} top grids (n, h, w), got {getattr(top, 'shape', top)!r}")
        top = top.cpu()
        cond = repeat_codes(top, tuple(bottom_prior.grid_shape))             # (n, h_b, w_b)
        bottom = bottom_prior.sample(n, bottom_prior.grid_shape, generator=generator, temperature=temperature,
                                     cond=cond.to(model_device(bottom_prior))).cpu()
        device = model_device(self)
        return self.decode(top.to(device), bottom.to(device)).cpu(), Codes(top, bottom)

    def forward(self, x: torch.Tensor) -> Output:
        self.check_images(x)
        if self.config.likelihood == "gaussian":
            check_target_span(self, x)
        q_top, q_bottom = self._quantize(x)
        cfg, empty = self.config, torch.zeros_like(q_bottom.z_q)
        if cfg.top_weight > 0:        # both decodings are trained: one decoder call on the doubled batch
            out, out_top = self._decode_vectors(torch.cat([q_top.z_q, q_top.z_q]),
                                                torch.cat([q_bottom.z_q, empty])).chunk(2)
        else:                         # the top level alone is only measured: no gradient through it
            out = self._decode_vectors(q_top.z_q, q_bottom.z_q)
            with torch.no_grad():
                out_top = self._decode_vectors(q_top.z_q, empty)
        recon, x_hat = pixel_likelihood(out, x, cfg.likelihood)
        recon_top, _ = pixel_likelihood(out_top, x, cfg.likelihood)             # the top level alone
        loss = recon + cfg.top_weight * recon_top + cfg.beta * (q_top.commitment + q_bottom.commitment)
        if cfg.codebook == "loss":
            loss = loss + q_top.vq + q_bottom.vq
        terms = {"recon": recon, "recon_top": recon_top, "vq_top": q_top.vq, "vq_bottom": q_bottom.vq,
                 "commitment_top": q_top.commitment, "commitment_bottom": q_bottom.commitment}
        stats = {"perplexity_top": q_top.perplexity, "perplexity_bottom": q_bottom.perplexity}
        return Output(loss=loss, terms=terms, stats=stats, x_hat=x_hat, z=q_bottom.indices)
