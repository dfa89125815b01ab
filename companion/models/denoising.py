r"""The denoising autoencoder (Vincent et al., 2008).

Train the autoencoder of chapter 1 on corrupted inputs x̃ ~ M_D(x̃ | x) but score its
reconstruction against the clean x:

    L_DAE(θ, φ) = (1/n) Σ_i ‖x⁽ⁱ⁾ − f_θ(g_φ(x̃⁽ⁱ⁾))‖²,   x̃⁽ⁱ⁾ ~ M_D(x̃ | x⁽ⁱ⁾).

The corruption is drawn afresh at every training step; in eval mode the model applies no
noise, so ``model(x_tilde, target=x)`` scores how well it repairs a given corrupted input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from companion.data.corrupt import KINDS, corrupt
from companion.models.autoencoder import Autoencoder, AutoencoderConfig
from companion.models.base import Output, choice


@dataclass
class DenoisingAutoencoderConfig(AutoencoderConfig):
    """An :class:`AutoencoderConfig` plus the corruption process.

    Attributes:
        noise: ``"masking"``, ``"gaussian"`` or ``"salt_and_pepper"``.
        noise_level: the proportion of corrupted dimensions (masking, salt and pepper;
            in [0, 1]) or the standard deviation σ ≥ 0 (Gaussian).
    """

    noise: str = "masking"
    noise_level: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        choice(self, "noise", KINDS)
        level = self.noise_level
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level) or level < 0:
            raise ValueError(f"DenoisingAutoencoderConfig.noise_level must be a number ≥ 0, got {level!r}")
        if self.noise != "gaussian" and level > 1:
            raise ValueError(f"DenoisingAutoencoderConfig.noise_level is a proportion for {self.noise!r} "
                             f"noise and must lie in [0, 1], got {level}")


class DenoisingAutoencoder(Autoencoder):
    """An :class:`Autoencoder` trained to map corrupted inputs back to clean ones (L_DAE)."""

    config_class = DenoisingAutoencoderConfig


    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x̃ ~ M_D(x̃ | x) with the configured noise."""
        return corrupt(x, self.config.noise, self.config.noise_level, generator=generator)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> Output:
        """Training: corrupt x, reconstruct, score against the clean x. Eval: no corruption."""
        self.check_images(x)
        clean = x if target is None else target
        x_in = self.corrupt(x) if self.training else x
        return super().forward(x_in, target=clean)
