r"""Sparse autoencoders for finding features (Bricken et al., 2023; Gao et al., 2024).

The k-sparse autoencoder of chapter 4, grown into the tool that takes apart the hidden
activations of a network. The input x ∈ R^d is an activation vector, and the code has far
more units than x has dimensions (m > d). With W_enc (m × d), b_enc, W_dec (d × m) and b_pre:

    z  = ReLU(TopK(W_enc (x − b_pre) + b_enc))                          (activation "topk")
    z  = ReLU(W_enc (x − b_pre) + b_enc),  L += λ Σ_j |z_j|             (activation "relu", the L1 SAE)
    x' = W_dec z + b_pre

TopK is chapter 4's :func:`topk_sparsify`: exactly k units are non-zero (or fewer, where a
kept pre-activation is negative). Column j of W_dec is unit j's feature direction. Three
choices of Gao et al. are options, so that each can be measured:

* ``unit_norm_decoder``: the columns of W_dec are used divided by their norm, so a unit's
  size lives in z alone and an L1 penalty cannot be dodged by shrinking z and growing W_dec;
* ``tied_init``: W_enc starts as the transpose of W_dec;
* ``aux_k`` (AuxK): units that have not fired for ``dead_after`` training steps are asked to
  reconstruct what the live ones miss, δ = x − x', with their own top ``aux_k`` (through the
  same ReLU, as in Gao et al.'s released code); the squared
  error of that, weighted by α (``aux_weight``), joins the loss, so a dead unit gets a gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from companion.models.base import (EncoderDecoder, Output, check_codes, check_input, choice, finite_at_least,
                                   model_dtype, plain_fields, positive_int)
from companion.models.ksparse import topk_sparsify


@dataclass
class SAEConfig:
    """Hyper-parameters of :class:`SAE`; every field is validated.

    Attributes:
        input_dim: d, the size of the activation vectors x.
        code_size: m, the number of units (latents); usually several times d.
        activation: ``"topk"`` (keep the k largest) or ``"relu"`` (ReLU with an L1 penalty).
        k: units kept per input by TopK (1 ≤ k ≤ m).
        lam: λ ≥ 0, the weight of the L1 penalty of the ``"relu"`` SAE.
        unit_norm_decoder: use the columns of W_dec divided by their norms.
        tied_init: start W_enc as the transpose of W_dec.
        aux_k: units the AuxK term lets dead units use (0: no AuxK).
        aux_weight: α, the weight of the AuxK term.
        dead_after: training steps without firing after which a unit counts as dead.
    """

    input_dim: int = 32
    code_size: int = 256
    activation: str = "topk"
    k: int = 4
    lam: float = 0.0
    unit_norm_decoder: bool = True
    tied_init: bool = True
    aux_k: int = 0
    aux_weight: float = 1 / 32
    dead_after: int = 200

    def __post_init__(self) -> None:
        plain_fields(self)
        for name in ("input_dim", "code_size", "k", "dead_after"):
            positive_int(self, name)
        choice(self, "activation", ("topk", "relu"))
        if self.k > self.code_size:
            raise ValueError(f"SAEConfig.k must be at most code_size={self.code_size}, got {self.k}")
        finite_at_least(self, "lam")
        finite_at_least(self, "aux_weight")
        if isinstance(self.aux_k, bool) or not isinstance(self.aux_k, int) or not 0 <= self.aux_k <= self.code_size:
            raise ValueError(f"SAEConfig.aux_k must be an int in [0, code_size={self.code_size}], got {self.aux_k!r}")
        for name in ("unit_norm_decoder", "tied_init"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"SAEConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if self.activation == "topk" and self.lam:
            raise ValueError("SAEConfig.lam is the L1 weight of the 'relu' SAE; a TopK SAE takes lam=0")


class SAE(EncoderDecoder):
    """A sparse autoencoder of activation vectors (B, d) → codes (B, m) → (B, d).

    ``forward(x)`` gives ``terms`` ``recon`` (‖x − x'‖² summed over d, mean over the batch),
    ``l1`` for the ReLU SAE and ``aux`` with AuxK, and ``stats`` ``l0`` (mean number of
    non-zero units) and ``dead_fraction`` (share of units silent for ``dead_after`` steps).
    """

    config_class = SAEConfig

    def __init__(self, config: SAEConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        d, m = cfg.input_dim, cfg.code_size
        w_dec = torch.randn(d, m)
        w_dec = w_dec / w_dec.norm(dim=0, keepdim=True)             # unit columns: random directions
        w_enc = w_dec.T.clone() if cfg.tied_init else nn.init.kaiming_uniform_(torch.empty(m, d), a=5 ** 0.5)
        self.W_enc, self.b_enc = nn.Parameter(w_enc), nn.Parameter(torch.zeros(m))
        self.W_dec, self.b_pre = nn.Parameter(w_dec), nn.Parameter(torch.zeros(d))
        self.register_buffer("steps_since_fired", torch.zeros(m, dtype=torch.long))

    def check_images(self, x) -> None:
        """The input check: activation vectors (B, d) of the model's dtype, finite."""
        check_input(x, name=type(self).__name__, shape=(self.config.input_dim,), dtype=model_dtype(self))

    def directions(self) -> torch.Tensor:
        """The units' feature directions, one per row (m, d): the columns of W_dec as used."""
        w = self.W_dec
        if self.config.unit_norm_decoder:
            w = w / w.norm(dim=0, keepdim=True).clamp(min=1e-12)
        return w.T

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """W_enc (x − b_pre) + b_enc, (B, m)."""
        self.check_images(x)
        return (x - self.b_pre) @ self.W_enc.T + self.b_enc

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "topk":
            pre = topk_sparsify(pre, self.config.k)
        return torch.relu(pre)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The sparse code z (B, m)."""
        return self._activate(self.preactivation(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x' = W_dec z + b_pre, (B, d)."""
        check_codes(self, z, self.config.code_size)
        return z @ self.directions() + self.b_pre

    def dead(self) -> torch.Tensor:
        """Which units have not fired for ``dead_after`` training steps, (m,) bool."""
        return self.steps_since_fired >= self.config.dead_after

    def forward(self, x: torch.Tensor) -> Output:
        cfg = self.config
        pre = self.preactivation(x)
        z = self._activate(pre)
        x_hat = self.decode(z)
        recon = (x - x_hat).pow(2).sum(1).mean()
        terms, loss = {"recon": recon}, recon
        if cfg.activation == "relu":
            terms["l1"] = z.sum(1).mean()                            # z ≥ 0, so Σ_j |z_j| = Σ_j z_j
            loss = loss + cfg.lam * terms["l1"]
        dead = self.dead()
        if cfg.aux_k:
            terms["aux"] = self._aux(pre, dead, (x - x_hat).detach())
            loss = loss + cfg.aux_weight * terms["aux"]
        if self.training and torch.is_grad_enabled() and torch.isfinite(pre).all():
            with torch.no_grad():                                    # the training step's bookkeeping
                self.steps_since_fired += 1
                self.steps_since_fired[(z > 0).any(0)] = 0
        stats = {"l0": (z > 0).float().sum(1).mean().detach(), "dead_fraction": dead.float().mean()}
        return Output(loss=loss, terms=terms, stats=stats, x_hat=x_hat, z=z)

    def _aux(self, pre: torch.Tensor, dead: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """AuxK: ‖δ − W_dec z_aux‖², with z_aux = ReLU(TopK) of the dead units' pre-activations
        (``aux_k`` of them); zero when no unit is dead."""
        n_dead = int(dead.sum())
        if n_dead == 0:
            return pre.new_zeros(())
        z_aux = torch.relu(topk_sparsify(pre[:, dead], min(self.config.aux_k, n_dead)))   # (B, dead units)
        return (delta - z_aux @ self.directions()[dead]).pow(2).sum(1).mean()
