r"""The sparse autoencoder (Ng, 2011): few hidden units active at a time, on average.

The hidden units are sigmoids, a_j⁽ˡ⁾(x) ∈ (0, 1). Over a batch, the mean activation of unit
j is ρ̂_j⁽ˡ⁾ = (1/n) Σ_i a_j⁽ˡ⁾(x⁽ⁱ⁾); the penalty pulls every ρ̂_j towards a small target ρ
through the KL divergence between two Bernoulli distributions:

    L_SAE(θ) = L(θ) + β Σ_l Σ_j KL(ρ ‖ ρ̂_j⁽ˡ⁾),

summed over every hidden layer l of the encoder (the code z included). L(θ) is the
reconstruction loss under the book's reduction convention; the penalty is one number per
batch, weighted by the explicit β.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from companion import losses
from companion.models.autoencoder import Autoencoder, AutoencoderConfig
from companion.models.base import Output


@dataclass
class SparseAutoencoderConfig(AutoencoderConfig):
    """An :class:`AutoencoderConfig` with sigmoid hidden units and the sparsity penalty.

    Attributes:
        rho: target mean activation ρ ∈ (0, 1) of every hidden unit.
        beta: weight β ≥ 0 of the penalty.
    """

    code_size: int = 196
    hidden: tuple[int, ...] = ()
    act: str = "sigmoid"
    code_act: str = "sigmoid"
    likelihood: str = "gaussian"
    out_act: str = "sigmoid"
    rho: float = 0.05
    beta: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.act != "sigmoid" or self.code_act != "sigmoid":
            raise ValueError("SparseAutoencoderConfig: the hidden units must be sigmoids "
                             "(act='sigmoid', code_act='sigmoid'): the penalty reads them as probabilities")
        if self.architecture != "mlp":
            raise ValueError("SparseAutoencoderConfig.architecture must be 'mlp'")
        for name in ("rho", "beta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"SparseAutoencoderConfig.{name} must be a finite number, got {v!r}")
        if not 0 < self.rho < 1:
            raise ValueError(f"SparseAutoencoderConfig.rho must lie strictly inside (0, 1), got {self.rho}")
        if self.beta < 0:
            raise ValueError(f"SparseAutoencoderConfig.beta must be ≥ 0, got {self.beta}")


class SparseAutoencoder(Autoencoder):
    """Sigmoid autoencoder with the KL sparsity penalty; ``terms`` = ``recon``, ``sparsity``.

    ``terms["sparsity"]`` is Σ_l Σ_j KL(ρ ‖ ρ̂_j⁽ˡ⁾) (unweighted); the loss adds β times it.
    """

    config_class = SparseAutoencoderConfig


    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """a⁽ˡ⁾(x) for every sigmoid layer of the encoder, first to last (the last is z)."""
        self.check_images(x)
        acts, h = [], x
        for module in self.encoder:
            h = module(h)
            if isinstance(module, nn.Sigmoid):
                acts.append(h)
        return acts

    def mean_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ρ̂⁽ˡ⁾: the batch mean of each hidden layer's activations, one (s_l,) tensor per layer."""
        return [a.mean(dim=0) for a in self.hidden_activations(x)]

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> Output:
        acts = self.hidden_activations(x)                       # one (B, units) tensor per sigmoid layer
        z = acts[-1]                                            # (B, code_size)
        recon, x_hat = self.reconstruction_loss(z, x if target is None else target)
        # Σ_l Σ_j KL(ρ ‖ ρ̂_j⁽ˡ⁾), with ρ̂ the mean activation over this batch
        sparsity = sum(losses.kl_bernoulli(self.config.rho, a.mean(dim=0)).sum() for a in acts)
        loss = recon + self.config.beta * sparsity
        return Output(loss=loss, terms={"recon": recon, "sparsity": sparsity}, x_hat=x_hat, z=z)
