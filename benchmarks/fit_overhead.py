"""What ``companion.train.fit`` costs over a bare PyTorch loop training the same model.

    python benchmarks/fit_overhead.py              # 5 alternating pairs per model (~3 min)
    python benchmarks/fit_overhead.py --pairs 3

For each model (the default VAE, an MLP, on mnist-5k for 6 epochs; the default VQ-VAE with
an EMA codebook, a conv net, for 1 epoch), the same seed builds the same initial weights
twice: one copy is trained by ``fit(model, x, epochs=E)``, the other by the loop below, which
does the same work (AdamW at the same learning rate, the same shuffling generator, the same
seed for the model's own noise, the loss of each step summed for an epoch mean). The loop
runs twice: with PyTorch's fused AdamW, as ``fit`` uses (``fit``'s own overhead), and with
the default AdamW a hand-written loop gets (what ``fit`` saves such a loop). The two
runs alternate, A B A B …, and the ratio is taken pair by pair, so that a machine whose
speed drifts affects both sides alike. The final losses are printed too: the two loops do
the same arithmetic, so they should agree to the last digits.

``fit`` adds per step: the divergence guard (one ``isfinite`` of the loss, and every 16 steps
the parameters' norm), the per-term ``.item()`` logging, and per epoch the history. Run by
hand, not in CI.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import companion
from companion.data import load
from companion.models import VAE, VQVAE, VAEConfig, VQVAEConfig
from companion.train import fit


def bare_loop(model: torch.nn.Module, x: torch.Tensor, epochs: int, *, lr: float = 1e-3, batch_size: int = 128,
              seed: int = 0, fused: bool = True) -> float:
    """Train ``model`` as a hand-written loop would; returns the last epoch's mean loss.
    ``fused``: PyTorch's fused AdamW, as ``fit`` uses (False: the default multi-tensor form a
    hand-written loop gets unless it asks)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, **({"fused": True} if fused else {}))
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.train()
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(x), generator=shuffle).split(batch_size):
            loss = model(x[idx]).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    return total / len(x)


MODELS = {
    "VAE (MLP 784-400-16), 6 epochs": (lambda: VAE(VAEConfig(latent_size=16)), 6),
    "VQ-VAE (conv 32-64, EMA), 1 epoch": (lambda: VQVAE(VQVAEConfig()), 1),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    x, _ = load("mnist-5k", "train")
    print(f"mnist-5k: {len(x)} training digits; torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | bare loop's optimiser | pairs | fit (s, median) | bare loop (s, median) | "
          "fit / bare, median of pairs | range of pairs | final loss fit / bare |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (build, epochs) in MODELS.items():
        for fused in (True, False):
            t_fit, t_bare, ratios = [], [], []
            for _ in range(args.pairs):
                companion.seed_everything(0)
                model = build()
                start = time.perf_counter()
                h = fit(model, x, epochs=epochs, progress=False)
                t_fit.append(time.perf_counter() - start)
                companion.seed_everything(0)
                model = build()
                start = time.perf_counter()
                bare = bare_loop(model, x, epochs, fused=fused)
                t_bare.append(time.perf_counter() - start)
                ratios.append(t_fit[-1] / t_bare[-1])
            loop = "fused AdamW, as fit" if fused else "default AdamW"
            print(f"| {name} | {loop} | {args.pairs} | {statistics.median(t_fit):.2f} | "
                  f"{statistics.median(t_bare):.2f} | {statistics.median(ratios):.3f} | "
                  f"{min(ratios):.3f}–{max(ratios):.3f} | {h.train['loss'][-1]:.4f} / {bare:.4f} |", flush=True)


if __name__ == "__main__":
    main()
