r"""The k-sparse autoencoder (Makhzani & Frey, 2014).

A linear encoder computes z = W x + b; only the k largest entries of z are kept and the
rest set to zero, z' = Sparsify_k(z); the decoder reconstructs from z'. Because the zeroed
units are multiplied by a constant 0, back-propagation reaches only the k selected units:
each input trains just the k dictionary atoms it uses.

Optionally k is annealed: it starts at ``k_start`` and decreases linearly to ``k`` over the
first ``anneal_steps`` training steps, which gives every unit a chance to be selected early
and so reduces dead units.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from companion.models.autoencoder import Autoencoder, AutoencoderConfig
from companion.models.base import Output


def topk_sparsify(z: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of each row of z (B, m) and set the others to zero.

    The result is ``z * mask`` with a constant 0/1 mask, so the gradient is passed through
    unchanged for the kept entries and is exactly zero for the others.
    """
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"topk_sparsify expects codes of shape (B, m), got {getattr(z, 'shape', type(z))}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= z.shape[1]:
        raise ValueError(f"k must be an int with 1 ≤ k ≤ {z.shape[1]}, got {k!r}")
    idx = z.topk(k, dim=1).indices
    mask = torch.zeros_like(z).scatter_(1, idx, 1.0)
    return z * mask


@dataclass
class KSparseAutoencoderConfig(AutoencoderConfig):
    """A linear-bottleneck :class:`AutoencoderConfig` with top-k sparsification.

    Attributes:
        k: number of code units kept per input (1 ≤ k ≤ code_size).
        k_start: if given (≥ k), the k used at the first training step, annealed linearly
            down to ``k`` over ``anneal_steps`` steps.
        anneal_steps: length of the annealing, in training steps (0: none).
    """

    code_size: int = 500
    hidden: tuple[int, ...] = ()
    out_act: str = "sigmoid"
    k: int = 25
    k_start: int | None = None
    anneal_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.code_act != "identity":
            raise ValueError("KSparseAutoencoderConfig.code_act must be 'identity' (a linear bottleneck)")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= self.code_size:
            raise ValueError(f"KSparseAutoencoderConfig.k must be an int in [1, code_size={self.code_size}], "
                             f"got {self.k!r}")
        if self.k_start is not None and (isinstance(self.k_start, bool) or not isinstance(self.k_start, int)
                                         or not self.k <= self.k_start <= self.code_size):
            raise ValueError(f"KSparseAutoencoderConfig.k_start must be an int in [k={self.k}, "
                             f"code_size={self.code_size}], got {self.k_start!r}")
        if isinstance(self.anneal_steps, bool) or not isinstance(self.anneal_steps, int) or self.anneal_steps < 0:
            raise ValueError(f"KSparseAutoencoderConfig.anneal_steps must be an int ≥ 0, got {self.anneal_steps!r}")


class KSparseAutoencoder(Autoencoder):
    """Linear encoder, top-k code, decoder; ``Output.z`` is the sparse code z'."""

    config_class = KSparseAutoencoderConfig

    def __init__(self, config: KSparseAutoencoderConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> "KSparseAutoencoder":
        """Data-aware initialisation that keeps most units alive (returns self).

        Encoder rows are random unit vectors, the decoder starts as their transpose (tied at
        initialisation, trained untied), and each encoder bias is set to −wⱼᵀ x̄ so that every
        unit starts centred on the mean image x̄: no unit wins the top-k for every input.
        Only for the MLP with no hidden layers (a single linear encoder and decoder).
        """
        if self.config.hidden:
            raise ValueError("init_from_data needs hidden=() (one linear encoder and decoder layer)")
        enc, dec = self.encoder[1], self.decoder[0][1]
        w = torch.randn(enc.weight.shape)
        w = w / w.norm(dim=1, keepdim=True)                        # (m, d) unit rows
        enc.weight.copy_(w)
        dec.weight.copy_(w.T)
        enc.bias.copy_(-(w @ x.reshape(len(x), -1).mean(0)))
        dec.bias.zero_()
        return self

    @property
    def current_k(self) -> int:
        """The k in force now: annealed from ``k_start`` while training, else ``k``."""
        cfg = self.config
        if cfg.k_start is None or cfg.anneal_steps == 0:
            return cfg.k
        frac = min(1.0, self.steps.item() / cfg.anneal_steps)
        return int(round(cfg.k_start - frac * (cfg.k_start - cfg.k)))

    def encode_dense(self, x: torch.Tensor) -> torch.Tensor:
        """z = W x + b before sparsification: (B, C, H, W) → (B, code_size)."""
        return super().encode(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z' = Sparsify_k(W x + b)."""
        return topk_sparsify(self.encode_dense(x), self.current_k)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> Output:
        z = self.encode(x)                                   # (B, m), k non-zeros per row
        recon, x_hat = self.reconstruction_loss(z, x if target is None else target)
        if self.training and torch.isfinite(recon):          # the schedule advances on finite batches only
            self.steps += 1
        return Output(loss=recon, terms={"recon": recon}, x_hat=x_hat, z=z)
