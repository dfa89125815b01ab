"""Chapter 9's experiment: VQ-VAE-2 on digits padded to 32×32.

A single-level VQ-VAE (8×8 codes) against two two-level models (4×4 top codes and 8×8 bottom
codes, the same 512 bits per image), one with the paper's objective and one with an extra
top-level reconstruction term. Measured: held-out reconstruction, top-level-only
reconstruction, and where a linear probe places images decoded from the top codes of one
digit and the bottom codes of another. Then PixelSNAIL priors (top; bottom given top) in bits
per code, and ancestral samples at several temperatures. Last, the top prior once more for twice
as many epochs, with held-out bits after each, to show why the priors stop where they do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from companion.data import Split, pad_to
from companion.experiments.core import Claim, Digits, Run, claims, experiment_run, references
from companion.metrics import level_codes, linear_probe, swap_agreement
from companion.models import VQVAE, VQVAE2, PixelSNAIL, VQVAE2Config, VQVAEConfig
from companion.models.pixelcnn import repeat_codes
from companion.models.vq import perplexity
from companion.runtime import preserved_rngs
from companion.train import evaluate, fit

NAME = "vq-vae-2"
CHAPTER = "chapters/09_vq_vae2"


@dataclass(frozen=True)
class Budget(Digits):
    size: int = 32                          # digits centred on size×size
    num_codes_top: int = 256
    num_codes_bottom: int = 64
    single_num_codes: int = 256             # 64·log2 256 = 16·log2 256 + 64·log2 64 = 512 bits
    code_dim: int = 16
    channels: tuple[int, ...] = (32, 64)
    epochs: int = 12
    lr: float = 2e-3
    batch_size: int = 64
    top_weight: float = 1.0                 # λ of the top-level term of the "separated" model
    prior_epochs: int = 5                   # held-out bits: top lowest at epoch 5, bottom flat 5-7
    prior_channels: int = 64
    prior_blocks: int = 4
    prior_heads: int = 4
    repeats: int = 1                        # seeds seed … seed + repeats − 1; metrics averaged
    n_samples: int = 100
    temperatures: tuple[float, ...] = (0.5, 1.0, 1.5)


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), epochs=30, prior_epochs=10, prior_channels=128, prior_blocks=6, prior_heads=8,
                   repeats=3),
    "smoke": Budget(n_train=256, n_test=128, num_codes_top=16, num_codes_bottom=8, single_num_codes=16, code_dim=4,
                    channels=(4, 8), epochs=1, prior_epochs=1, prior_channels=8, prior_blocks=1, prior_heads=2,
                    n_samples=8, temperatures=(1.0,)),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    # Not "at least as good": on the quick budget (CPU) the two-level model was 1.5 % better than the
    # single level on seed 0 and 4.9 % and 3.7 % worse on seeds 1 and 2.
    Claim("hierarchy_about_as_good", "at the same 512 bits the two-level model reconstructs within 5 % of the "
                                     "single-level one",
          lambda m: abs(m["vqvae2_test_recon"] - m["single_test_recon"]) < 0.05 * m["single_test_recon"]),
    Claim("paper_loss_bottom_dominates", "with the paper's objective a swapped image takes the bottom digit",
          lambda m: m["vqvae2_swap_follows_bottom"] > m["vqvae2_swap_follows_top"]),
    Claim("top_term_separates", "with the top-level term it takes the top digit, in most swaps and more than "
                                "twice as often as the bottom one",
          lambda m: m["separated_swap_follows_top"] > 0.6
          and m["separated_swap_follows_top"] > 2 * m["separated_swap_follows_bottom"]),
    Claim("top_term_draws_shape", "and the top level alone reconstructs four times better",
          lambda m: m["separated_top_only_recon"] < m["vqvae2_top_only_recon"] / 4),
    Claim("priors_beat_frequencies", "both priors need fewer bits than the code frequencies, which need fewer "
                                     "than a uniform choice",
          lambda m: m["top_prior_bits_per_code"] < m["top_counts_bits_per_code"] < m["top_uniform_bits_per_code"]
          and m["bottom_prior_bits_per_code"] < m["bottom_counts_bits_per_code"]
          < m["bottom_uniform_bits_per_code"]),
    Claim("samples_cover_digits", "among the samples at τ = 1 the probe finds at least 8 of the 10 digits",
          lambda m: m["samples_classes_found"] >= 8),
    Claim("longer_prior_overfits", "trained for twice the budget's epochs, the top prior ends with more held-out "
                                   "bits than it had at the budget's epoch, while its training bits keep falling",
          lambda m: m["top_prior_longer_val_bits_last"] > m["top_prior_longer_val_bits_at_budget"]
          and m["top_prior_longer_train_bits_last"] < m["top_prior_longer_train_bits_at_budget"]),
)


def data(b: Budget) -> tuple[Split, Split]:
    """(train, test) digits of budget ``b`` centred on b.size × b.size."""
    return tuple(Split(pad_to(s.x, b.size), s.y) for s in b.load())


def _autoencoders(b: Budget, r: Run, x_train, s: int, suffix: str) -> dict:
    """The single-level VQ-VAE and the two two-level models of seed ``s``, trained in ``r``."""
    shape = tuple(x_train.shape[1:])
    single = VQVAEConfig(image_shape=shape, channels=b.channels, num_codes=b.single_num_codes, code_dim=b.code_dim,
                         codebook="ema+restart")
    two = {name: VQVAE2Config(image_shape=shape, channels=b.channels, code_dim=b.code_dim,
                              num_codes_top=b.num_codes_top, num_codes_bottom=b.num_codes_bottom, top_weight=w)
           for name, w in (("vqvae2", 0.0), ("separated", b.top_weight))}
    train = dict(seed=s, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size)
    return {"single": r.train("single" + suffix, lambda: VQVAE(single), x_train, **train),
            **{name: r.train(name + suffix, lambda: VQVAE2(config), x_train, **train) for name, config in two.items()}}


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train the three autoencoders (per seed), the two priors and sample, on the run's device."""
    (x_train, y_train), (x_test, y_test) = data(b)
    classify = r.results["classify"] = linear_probe(x_train, y_train)   # pixels → digit
    r.record("probe_test_acc", (classify(x_test) == y_test.numpy()).mean())
    found: dict[tuple[str, str], list[float]] = {}
    for s in range(r.seed, r.seed + b.repeats):
        models = _autoencoders(b, r, x_train, s, "" if s == r.seed else f"_seed{s}")
        found.setdefault(("single", "test_recon"), []).append(evaluate(models["single"], x_test)["recon"])
        for name in ("vqvae2", "separated"):
            scores = evaluate(models[name], x_test)
            swap = swap_agreement(models[name], x_test, y_test, classify, seed=s)
            for metric, v in {"test_recon": scores["recon"], "top_only_recon": scores["recon_top"],
                              "swap_follows_top": swap["follows_top"],
                              "swap_follows_bottom": swap["follows_bottom"]}.items():
                found.setdefault((name, metric), []).append(v)
    for (name, metric), v in found.items():
        r.record(metric, np.mean(v), model=name)
    r.record("bits_per_image", 64 * math.log2(b.single_num_codes))

    model = r.models["separated"]
    codes_train, codes_test = level_codes(model, x_train), level_codes(model, x_test)
    r.results["codes_test"] = codes_test
    top_shape, bottom_shape = tuple(codes_train.top.shape[1:]), tuple(codes_train.bottom.shape[1:])
    prior = dict(channels=b.prior_channels, blocks=b.prior_blocks, heads=b.prior_heads)
    train = dict(epochs=b.prior_epochs, lr=b.lr, batch_size=b.batch_size)
    up = lambda c: repeat_codes(c.top, bottom_shape)     # noqa: E731  (top codes at the bottom's size)
    top_prior = r.train("top_prior", lambda: PixelSNAIL(b.num_codes_top, top_shape, **prior), codes_train.top, **train)
    bottom_prior = r.train("bottom_prior", lambda: PixelSNAIL(b.num_codes_bottom, bottom_shape,
                                                              cond_codes=b.num_codes_top, **prior),
                           (codes_train.bottom, up(codes_train)), **train)
    r.record("bits_per_code", evaluate(top_prior, codes_test.top)["bits_per_code"], model="top_prior")
    r.record("bits_per_code", evaluate(bottom_prior, (codes_test.bottom, up(codes_test)))["bits_per_code"],
             model="bottom_prior")
    for level, k in (("top", b.num_codes_top), ("bottom", b.num_codes_bottom)):
        grid = getattr(codes_test, level)
        r.record("counts_bits_per_code", math.log2(perplexity(torch.bincount(grid.flatten().cpu(), minlength=k))),
                 level=level)
        r.record("uniform_bits_per_code", math.log2(k), level=level)
    r.results["samples"] = {}
    for t in b.temperatures:
        r.results["samples"][t], _ = model.sample(top_prior, bottom_prior, b.n_samples, temperature=t,
                                                  generator=torch.Generator().manual_seed(r.seed))
    at_one = r.results["samples"].get(1.0, next(iter(r.results["samples"].values())))
    r.record("samples_classes_found", len(np.unique(classify(at_one))))

    # Why the priors stop after b.prior_epochs: the top prior again, from the same initial weights, for
    # twice as many epochs, with its held-out bits after every epoch. Added last, with the generators
    # preserved, so that every number above and every random draw after the run stay what they were.
    with preserved_rngs(r.device):
        r.train("top_prior_longer", lambda: PixelSNAIL(b.num_codes_top, top_shape, **prior), codes_train.top,
                val=codes_test.top, **{**train, "epochs": 2 * b.prior_epochs})
    h = r.histories["top_prior_longer"]
    held_out, seen = h.val["bits_per_code"], h.train["bits_per_code"]
    r.record("val_best_epoch", 1 + int(np.argmin(held_out)), model="top_prior_longer")
    r.record("val_bits_at_budget", held_out[b.prior_epochs - 1], model="top_prior_longer")
    r.record("val_bits_last", held_out[-1], model="top_prior_longer")
    r.record("train_bits_at_budget", seen[b.prior_epochs - 1], model="top_prior_longer")
    r.record("train_bits_last", seen[-1], model="top_prior_longer")


def procedure() -> list[tuple[str, str, str]]:
    """VQ-VAE-2's training and sampling (Razavi et al. 2019, survey Fig. 12) as numbered steps,
    each with the companion function that does it: a list of (stage, step, qualified name).
    Names come from the function objects, so a renamed function renames its step. (Drawn by
    :func:`companion.viz.diagrams.procedure_markdown`.)"""
    def name(f) -> str:
        return f"{f.__module__}.{f.__qualname__}"

    return [
        ("train", "train the two-level VQ-VAE: encode x to h_bot and z_top, quantise the top, condition the "
                  "bottom on the decoded top, quantise it, decode both; EMA codebooks",
         f"{name(fit)}({name(VQVAE2)})"),
        ("train", "encode every training image into its top and bottom code grids", name(VQVAE2.encode)),
        ("train", "fit the top prior p(c_top), an autoregressive PixelSNAIL over the top grid",
         f"{name(fit)}({name(PixelSNAIL)})"),
        ("train", "fit the bottom prior p(c_bot | c_top), the top grid repeated to the bottom's size as its "
                  "condition", f"{name(fit)}({name(PixelSNAIL)}(cond_codes=…)), {name(repeat_codes)}"),
        ("sample", "draw top codes from the top prior, one position at a time", name(PixelSNAIL.sample)),
        ("sample", "draw bottom codes given them from the bottom prior", name(PixelSNAIL.sample)),
        ("sample", "decode both grids into images (steps 5–7 together: VQVAE2.sample)", name(VQVAE2.decode)),
    ]


def describe(b: Budget) -> str:
    return (f"VQ-VAE-2 on digits padded to {b.size}×{b.size}: a single-level VQ-VAE (K = {b.single_num_codes}) "
            f"against two-level models (top K = {b.num_codes_top}, bottom K = {b.num_codes_bottom}), one with the "
            f"paper's objective and one with a top-level term (λ = {b.top_weight:g}), {b.epochs} epochs each: "
            f"held-out reconstruction, top-only reconstruction, swaps read by a linear probe; PixelSNAIL priors "
            f"({b.prior_blocks} blocks, {b.prior_epochs} epochs) in bits per code; {b.n_samples} samples per "
            f"temperature; the top prior again for {2 * b.prior_epochs} epochs, held-out bits after each; "
            f"{b.repeats} seed(s); {b.data_text()}.")
