r"""The contractive autoencoder (Rifai et al., 2011).

Penalise how much the code moves when the input moves: add the squared Frobenius norm of
the encoder's Jacobian,

    L_CAE = L_recon + λ (1/n) Σ_i ‖J_g(x⁽ⁱ⁾)‖²_F,   ‖J_g(x)‖²_F = Σ_jl (∂z_j(x)/∂x_l)².

The encoder is one sigmoid layer z = sigmoid(W x + b), for which the penalty has the closed form
Σ_j (h_j (1 − h_j))² Σ_i W_ji² (:func:`companion.losses.contractive_penalty`): no Jacobian
is ever built during training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from companion import losses
from companion.models.autoencoder import Autoencoder, AutoencoderConfig
from companion.models.base import Output


@dataclass
class ContractiveAutoencoderConfig(AutoencoderConfig):
    """An :class:`AutoencoderConfig` with one sigmoid encoder layer and the contractive penalty.

    Attributes:
        lam: weight λ ≥ 0 of the Jacobian penalty.
    """

    code_size: int = 128
    hidden: tuple[int, ...] = ()
    code_act: str = "sigmoid"
    out_act: str = "sigmoid"
    lam: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden != () or self.code_act != "sigmoid" or self.architecture != "mlp":
            raise ValueError("ContractiveAutoencoderConfig: the encoder must be one sigmoid layer "
                             "(hidden=(), code_act='sigmoid', architecture='mlp') for the closed-form penalty")
        if isinstance(self.lam, bool) or not isinstance(self.lam, (int, float)) or not math.isfinite(self.lam) \
                or self.lam < 0:
            raise ValueError(f"ContractiveAutoencoderConfig.lam must be a finite number ≥ 0, got {self.lam!r}")


class ContractiveAutoencoder(Autoencoder):
    """Sigmoid encoder z = sigmoid(W x + b), decoder, and λ‖J_g‖²_F; terms ``recon``, ``contractive``."""

    config_class = ContractiveAutoencoderConfig

    @property
    def encoder_weight(self) -> torch.Tensor:
        """W, shape (code_size, d)."""
        return self.encoder[1].weight

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> Output:
        h = self.encode(x)                                             # the code z: (B, m), in (0, 1)
        recon, x_hat = self.reconstruction_loss(h, x if target is None else target)
        jacobian_sq = losses.contractive_penalty(h, self.encoder_weight).mean()   # mean over the batch of ‖J_g(x)‖²_F
        loss = recon + self.config.lam * jacobian_sq
        return Output(loss=loss, terms={"recon": recon, "contractive": jacobian_sq}, x_hat=x_hat, z=h)
