r"""The autoencoder (Hinton & Salakhutdinov, 2006).

An encoder g_φ maps an input x to a code z = g_φ(x) of ``code_size`` numbers; a decoder f_θ
maps it back, x' = f_θ(z). Both are trained together to make x' ≈ x:

    L_AE(θ, φ) = (1/n) Σ_i ‖x⁽ⁱ⁾ − f_θ(g_φ(x⁽ⁱ⁾))‖²         (``likelihood="gaussian"``)

or, for data in [0, 1] and a sigmoid output layer, the cross-entropy
−Σ_d [x_d log x'_d + (1 − x_d) log(1 − x'_d)] (``likelihood="bernoulli"``). Both are
:func:`companion.losses.reconstruction` and follow its reduction convention (sum over
dimensions, mean over the batch).

With ``linear=True`` and the squared error the model is the linear autoencoder whose optimal
decoder spans the same subspace as the top ``code_size`` principal components.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from companion import losses
from companion.models.base import (EncoderDecoder, Output, check_codes, check_target_span, choice, plain_fields,
                                   positive_int)
from companion.nn import MLP, ConvDecoder, ConvEncoder, activation


@dataclass
class AutoencoderConfig:
    """Hyper-parameters of :class:`Autoencoder`; every field is validated.

    Attributes:
        image_shape: (C, H, W) of the inputs.
        code_size: dimension of the code z.
        hidden: hidden layer sizes of the MLP encoder (mirrored in the decoder), or the conv
            channels of the conv encoder (mirrored likewise).
        architecture: ``"mlp"`` or ``"conv"``.
        linear: no non-linearity anywhere (MLP only, Gaussian likelihood, identity output).
        act: activation of the hidden layers.
        likelihood: ``"gaussian"`` (the squared error on x') or ``"bernoulli"``
            (cross-entropy; the decoder emits logits and x' = sigmoid(logits)).
        out_act: output activation under the Gaussian likelihood (``"identity"`` or ``"sigmoid"``).
        code_act: activation of the code layer z (``"identity"``: a linear bottleneck).
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    code_size: int = 2
    hidden: tuple[int, ...] = (256,)
    architecture: str = "mlp"
    linear: bool = False
    act: str = "relu"
    likelihood: str = "gaussian"
    out_act: str = "identity"
    code_act: str = "identity"

    def __post_init__(self) -> None:
        plain_fields(self, one_tuple=("hidden",))
        self.image_shape = tuple(self.image_shape)
        self.hidden = tuple(self.hidden)
        if len(self.image_shape) != 3:
            raise ValueError(f"AutoencoderConfig.image_shape must be (C, H, W), got {self.image_shape}")
        for i, s in enumerate(self.image_shape):
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise ValueError(f"AutoencoderConfig.image_shape must hold positive ints, got {self.image_shape}")
        positive_int(self, "code_size")
        for h in self.hidden:
            if isinstance(h, bool) or not isinstance(h, int) or h < 1:
                raise ValueError(f"AutoencoderConfig.hidden must hold positive ints, got {self.hidden}")
        choice(self, "architecture", ("mlp", "conv"))
        choice(self, "likelihood", losses.LIKELIHOODS)
        choice(self, "out_act", ("identity", "sigmoid"))
        activation(self.act)  # raises on an unknown name
        activation(self.code_act)
        if self.architecture == "conv" and not self.hidden:
            raise ValueError("AutoencoderConfig.hidden must list at least one conv channel count "
                             "for architecture='conv'")
        if self.linear and (self.architecture != "mlp" or self.likelihood != "gaussian" or self.out_act != "identity"
                            or self.code_act != "identity"):
            raise ValueError("AutoencoderConfig.linear=True needs architecture='mlp', likelihood='gaussian', "
                             "out_act='identity' and code_act='identity'")

    @property
    def input_dim(self) -> int:
        c, h, w = self.image_shape
        return c * h * w


class Autoencoder(EncoderDecoder):
    """Deterministic autoencoder: encoder g_φ, decoder f_θ, reconstruction loss L_AE.

    ``forward(x)`` takes images (B, C, H, W) and returns an :class:`Output` with
    ``loss = terms["recon"]``, ``x_hat`` (B, C, H, W) and the code ``z`` (B, code_size).
    """

    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        act = "identity" if cfg.linear else cfg.act
        if cfg.architecture == "mlp":
            # g_φ: x (B, d) → z (B, m);  f_θ: z (B, m) → x' (B, d)
            self.encoder = MLP(cfg.input_dim, cfg.hidden, cfg.code_size, act=act, out_act=cfg.code_act)
            self.decoder = nn.Sequential(MLP(cfg.code_size, cfg.hidden[::-1], cfg.input_dim, act=act),
                                         nn.Unflatten(1, cfg.image_shape))
        else:
            self.encoder = nn.Sequential(ConvEncoder(cfg.image_shape, cfg.hidden, cfg.code_size, act=act),
                                         activation(cfg.code_act))
            self.decoder = ConvDecoder(cfg.code_size, cfg.image_shape, cfg.hidden[::-1], act=act)
        self.out_act = nn.Sigmoid() if cfg.likelihood == "bernoulli" else activation(cfg.out_act)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = g_φ(x): (B, C, H, W) → (B, code_size)."""
        self.check_images(x)
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output before the output activation: (B, m) → (B, C, H, W)."""
        check_codes(self, z, self.config.code_size)
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x' = f_θ(z): (B, code_size) → (B, C, H, W)."""
        return self.out_act(self.decode_logits(z))

    def reconstruction_loss(self, z: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode z and score it against ``target``: returns (L_recon, x').

        With the cross-entropy the loss is computed from the logits (stable) and
        x' = sigmoid(logits); with the squared error x' is the output activation's value.
        """
        out = self.decode_logits(z)                 # (B, C, H, W)
        if self.config.likelihood == "bernoulli":
            return losses.reconstruction(out, target, "bernoulli").mean(), torch.sigmoid(out)
        x_hat = self.out_act(out)
        check_target_span(self, target)
        if self.config.out_act == "sigmoid":
            lo, hi = losses.finite_range(target, f"the target of {type(self).__name__}")
            if lo < 0 or hi > 1:
                raise ValueError(f"the sigmoid output of {type(self).__name__} reaches only [0, 1], but the "
                                 f"targets span {lo:.3g}…{hi:.3g}: divide 0…255 images by 255")
        return losses.reconstruction(x_hat, target, "gaussian").mean(), x_hat

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> Output:
        """Encode, decode and score the reconstruction against ``target`` (default: x)."""
        z = self.encode(x)                          # (B, m)
        recon, x_hat = self.reconstruction_loss(z, x if target is None else target)
        return Output(loss=recon, terms={"recon": recon}, x_hat=x_hat, z=z)
