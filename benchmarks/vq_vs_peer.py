"""The companion's VQ-VAE codebook beside vector-quantize-pytorch's, at equal epochs.

    pip install vector-quantize-pytorch          # beside torch; not a dependency of the book
    python benchmarks/vq_vs_peer.py              # chapter 8's quick setting, seeds 0 and 1 (~6 min)
    python benchmarks/vq_vs_peer.py --epochs 4 --seeds 0

One encoder and decoder (chapter 8's: conv 32-64, a 7×7 grid, K = 128 codes of D = 16,
Bernoulli pixels, β = 0.25, lr 2e-3, batch 64, 12 epochs on mnist-5k's 4,000 digits), trained
by ``fit`` with four quantizers in turn, from the same initial encoder and decoder:

* companion ``ema+restart`` (EMA codebook, dead codes restarted on encoder outputs: the book's best);
* companion ``ema``;
* vector-quantize-pytorch ``VectorQuantize`` with its EMA (decay 0.99, the book's γ), plain;
* the same with its own cures: k-means initialisation and dead-code replacement
  (``kmeans_init=True``, ``threshold_ema_dead_code=2``).

The peer's commitment loss (a mean over elements) is rescaled to the book's reduction (sum
over a grid, mean over images), so that β weighs the same thing. One evaluator scores all four
on the 1,000 held-out digits: reconstruction −log p(x|z_q) in nats per digit, and the codebook's
perplexity and share of codes used on those digits (``companion.metrics.codebook_usage``).
Run by hand, not in CI.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

import companion
from companion.data import load
from companion.experiments.ch08_vq_vae import BUDGETS
from companion.metrics import codebook_usage
from companion.models import VQVAE, VQVAEConfig
from companion.models.vq import Quantized, perplexity
from companion.train import evaluate, fit


class PeerQuantizer(nn.Module):
    """vector-quantize-pytorch's ``VectorQuantize`` behind the interface of the book's
    :class:`~companion.models.vq.VectorQuantizer` (z_e (B, D, h, w) → :class:`Quantized`)."""

    ema = True                                  # its codebook learns by EMA: no VQ term in the loss

    def __init__(self, num_codes: int, code_dim: int, **options):
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.vq = VectorQuantize(dim=code_dim, codebook_size=num_codes, decay=0.99, commitment_weight=1.0,
                                 accept_image_fmap=True, **options)
        self.num_codes = num_codes

    def forward(self, z_e: torch.Tensor) -> Quantized:
        z_q, idx, commit = self.vq(z_e)                       # (B, D, h, w), (B, h, w), mean over elements
        per_image = z_e[0].numel()                            # D·h·w: the book sums over a grid
        counts = torch.bincount(idx.flatten(), minlength=self.num_codes)
        zero = torch.zeros((), device=z_e.device)
        return Quantized(z_q, idx, zero, commit.sum() * per_image, perplexity(counts))


def build(kind: str, b, seed: int) -> VQVAE:
    """Chapter 8's VQ-VAE with the quantizer ``kind``; the same seed gives the same encoder
    and decoder whatever the quantizer."""
    codebook = "ema+restart" if kind == "companion ema+restart" else "ema"
    companion.seed_everything(seed)
    model = VQVAE(VQVAEConfig(channels=b.channels, num_codes=b.num_codes, code_dim=b.code_dim, codebook=codebook))
    if kind.startswith("vector-quantize-pytorch"):
        options = dict(kmeans_init=True, threshold_ema_dead_code=2) if "cures" in kind else {}
        torch.manual_seed(seed)
        model.quantizer = PeerQuantizer(b.num_codes, b.code_dim, **options)
    return model


KINDS = ("companion ema+restart", "companion ema", "vector-quantize-pytorch EMA",
         "vector-quantize-pytorch EMA + its cures")


def main() -> None:
    b = BUDGETS["quick"]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=b.epochs)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    x, _ = load("mnist-5k", "train")
    x_test, _ = load("mnist-5k", "test")
    import vector_quantize_pytorch

    print(f"mnist-5k: {len(x)} training digits, {len(x_test)} held out; {args.epochs} epochs, K = {b.num_codes}, "
          f"D = {b.code_dim}; torch {torch.__version__}, vector-quantize-pytorch "
          f"{getattr(vector_quantize_pytorch, '__version__', '?')}\n")
    print("| quantizer | seed | seconds | recon (nats) | perplexity | codes used |")
    print("| --- | --- | --- | --- | --- | --- |")
    means: dict[str, list[tuple[float, float]]] = {}
    for seed in args.seeds:
        for kind in KINDS:
            model = build(kind, b, seed)
            start = time.perf_counter()
            fit(model, x, epochs=args.epochs, lr=b.lr, batch_size=b.batch_size, seed=seed, progress=False)
            took = time.perf_counter() - start
            model.eval()
            recon = evaluate(model, x_test)["recon"]
            usage = codebook_usage(model, x_test)
            means.setdefault(kind, []).append((recon, usage["perplexity"]))
            print(f"| {kind} | {seed} | {took:.0f} | {recon:.2f} | {usage['perplexity']:.1f} | "
                  f"{100 * usage['used_fraction']:.0f}% |", flush=True)
    print()
    for kind, rows in means.items():
        r, p = (sum(v) / len(v) for v in zip(*rows))
        print(f"{kind}: mean reconstruction {r:.2f} nats, mean perplexity {p:.1f} of {b.num_codes}")
    assert all(math.isfinite(v) for rows in means.values() for row in rows for v in row)


if __name__ == "__main__":
    main()
