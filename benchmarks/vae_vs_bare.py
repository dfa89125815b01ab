"""The companion's VAE, as a package user gets it, beside a bare PyTorch loop, at equal time.

    python benchmarks/vae_vs_bare.py                 # 15 and 45 s, seeds 0 and 1 (~5 min)
    python benchmarks/vae_vs_bare.py --seconds 15 --seeds 0

Both train on mnist-5k's 4,000 training digits, z = 16, in one process, for the same
wall-clock budget: whole epochs until the budget is spent. The two are interleaved epoch by
epoch (``fit``'s epoch callback runs the bare loop's epochs), each on its own clock, so that a
machine whose speed drifts slows both alike; ``fit`` is stopped by the callback once its
budget is spent. One evaluator scores both on the first 500 held-out digits: −ELBO (one draw
of z) and −log p(x) by the companion's importance-weighted estimate with K = 500, in nats
per digit; lower is better. Run by hand, not in CI; paste the table into the issue it serves.

* companion: ``VAE(VAEConfig(latent_size=16))`` trained by ``fit(model, x, epochs=E)`` with
  every other argument at its default;
* bare: 784-400-16 encoder and 16-400-784 decoder (ReLU), Adam 1e-3, batch 128, Bernoulli
  cross-entropy from logits plus the closed-form KL: the 20-line loop of the PyTorch examples.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

import companion
from companion.data import load
from companion.metrics import importance_weighted_log_likelihood
from companion.models import VAE, VAEConfig
from companion.train import fit


class BareVAE(nn.Module):
    """The bare loop's model, with the three methods the shared evaluator calls."""

    def __init__(self, z: int = 16, h: int = 400, d: int = 784):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 2 * z))
        self.dec = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d))
        self.z = z

    def encode(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return Independent(Normal(mu, (0.5 * logvar).exp()), 1)

    def decode(self, z):
        return Independent(Bernoulli(logits=self.dec(z).view(-1, 1, 28, 28), validate_args=False), 3)

    def prior(self, n: int = 1):
        return Independent(Normal(torch.zeros(n, self.z), torch.ones(n, self.z)), 1)

    def neg_elbo(self, x):
        """−ELBO per digit, as the PyTorch example computes it: one encoder pass, summed
        binary cross-entropy from logits and the closed-form KL, divided by the batch size."""
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = nn.functional.binary_cross_entropy_with_logits(self.dec(z), x.flatten(1), reduction="sum")
        kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum()
        return (recon + kl) / len(x)


class BareLoop:
    """The bare loop, one epoch at a time, with its own clock."""

    def __init__(self, x: torch.Tensor, seed: int):
        companion.seed_everything(seed)
        self.model, self.x = BareVAE(), x
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.epochs, self.seconds = 0, 0.0

    def epoch(self) -> None:
        start = time.perf_counter()
        with torch.enable_grad():       # fit calls its epoch callback under no_grad
            self._pass()
        self.epochs += 1
        self.seconds += time.perf_counter() - start

    def _pass(self) -> None:
        for idx in torch.randperm(len(self.x)).split(128):
            loss = self.model.neg_elbo(self.x[idx])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


class TimeUp(Exception):
    """Raised by the epoch callback once the budget is spent: ``fit`` stops, the model keeps
    its parameters (``fit`` rolls nothing back)."""


def train_both(x: torch.Tensor, seconds: float, seed: int) -> dict[str, tuple[nn.Module, int, float]]:
    """Train the companion's VAE (``fit`` with its defaults) and the bare loop for ``seconds``
    each, interleaved epoch by epoch: after each of ``fit``'s epochs the bare loop runs epochs
    until its own clock catches up. Each side's clock counts only its own epochs, so a machine
    whose speed drifts during the run slows both alike. Both run whole epochs until their
    budget is spent."""
    bare = BareLoop(x, seed)
    companion.seed_everything(seed)
    model = VAE(VAEConfig(latent_size=16))
    start, epochs = time.perf_counter(), 0

    def interleave(epoch, model):
        nonlocal epochs
        epochs = epoch + 1
        ours = time.perf_counter() - start - bare.seconds          # fit's own time so far
        while bare.seconds < min(ours, seconds):
            bare.epoch()
        if ours >= seconds:
            raise TimeUp

    try:
        fit(model, x, epochs=1_000_000, progress=False, on_epoch_end=interleave)
    except TimeUp:
        pass
    ours = time.perf_counter() - start - bare.seconds
    while bare.seconds < seconds:
        bare.epoch()
    return {"companion VAE (defaults)": (model, epochs, ours), "bare loop 784-400-16": (bare.model, bare.epochs, bare.seconds)}


@torch.no_grad()
def score(model: nn.Module, x: torch.Tensor, k: int, seed: int) -> tuple[float, float]:
    """(−ELBO, −log p(x) by importance sampling with k draws), nats per digit, one evaluator."""
    model.eval()
    torch.manual_seed(seed)
    q = model.encode(x)
    z = q.rsample()
    neg_elbo = -(model.decode(z).log_prob(x) + model.prior(len(x)).log_prob(z) - q.log_prob(z)).mean().item()
    neg_iw = -importance_weighted_log_likelihood(model, x, k=k).mean().item()
    return neg_elbo, neg_iw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[15.0, 45.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--n-eval", type=int, default=500)
    args = ap.parse_args()
    x, _ = load("mnist-5k", "train")
    x_eval = load("mnist-5k", "test").x[:args.n_eval]
    print(f"mnist-5k: {len(x)} training digits, {len(x_eval)} held out; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; K = {args.k}\n")
    print("| budget | model | seed | epochs | seconds | images/s | −ELBO | −log p(x), IW |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    means = {}
    for seconds in args.seconds:
        for seed in args.seeds:
            for name, (model, epochs, took) in train_both(x, seconds, seed).items():
                elbo, iw = score(model, x_eval, args.k, seed)
                means.setdefault((seconds, name), []).append(iw)
                print(f"| {seconds:g} s | {name} | {seed} | {epochs} | {took:.1f} | {epochs * len(x) / took:,.0f} "
                      f"| {elbo:.1f} | {iw:.1f} |", flush=True)
    print()
    for seconds in args.seconds:
        ours = sum(means[(seconds, "companion VAE (defaults)")]) / len(args.seeds)
        bare = sum(means[(seconds, "bare loop 784-400-16")]) / len(args.seeds)
        print(f"{seconds:g} s: −log p(x) companion {ours:.1f} vs bare {bare:.1f} nats "
              f"(difference {ours - bare:+.1f}, ratio {ours / bare:.3f}; mean over {len(args.seeds)} seed(s))")
    assert all(math.isfinite(v) for vs in means.values() for v in vs)


if __name__ == "__main__":
    main()
