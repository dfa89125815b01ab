"""Chapter 11's experiment: where two of the survey's lines went next.

1. **TopK sparse autoencoders.** Features in superposition (F sparse features in d < F
   dimensions, :func:`companion.data.superposition`), taken apart by TopK SAEs and by ReLU
   SAEs with an L1 penalty: feature recovery, dead units and normalised error, the error
   against L0 for both kinds, and Gao et al.'s three training choices switched off one at a
   time. Then a TopK SAE on the codes of an autoencoder trained on digits, with the digits that
   turn each unit on.
2. **Finite scalar quantisation.** Chapter 8's VQ-VAE with its codebook replaced by an FSQ
   grid of as many codes, against chapter 8's three codebooks at equal epochs, and a PixelCNN
   prior over the FSQ codes.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from companion.data import superposition
from companion.experiments import ch08_vq_vae as ch08
from companion.experiments.core import Claim, Digits, Run, claims, dashed, experiment_run, listed, references
from companion.metrics import encode_all, feature_recovery, sae_usage
from companion.models import SAE, Autoencoder, SAEConfig, VQVAEConfig

NAME = "after-the-survey"
CHAPTER = "chapters/11_after_the_survey"

#: the training choices of Gao et al. that the chapter switches off one at a time
VARIANTS = {"all three": {}, "untied init": {"tied_init": False}, "free decoder norm": {"unit_norm_decoder": False},
            "no AuxK": {"aux_k": 0}}


@dataclass(frozen=True)
class Budget(Digits):
    # the toy: F features in d dimensions, each on with probability rho
    n_features: int = 128
    dim: int = 32
    rho: float = 0.03
    toy_train: int = 20_000
    toy_test: int = 5_000
    code_size: int = 256            # m units, twice the features
    k: int = 4                      # the TopK SAE of the recovery and the variants
    ks: tuple[int, ...] = (2, 4, 8)
    lams: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25)
    aux_k: int = 64
    dead_after: int = 100
    epochs: int = 40            # 800 steps of 1,024 examples
    toy_lr: float = 1e-2
    toy_batch: int = 1024
    # digits: an autoencoder's codes, taken apart by a TopK SAE
    ae_code: int = 32
    ae_hidden: tuple[int, ...] = (256,)
    ae_epochs: int = 10
    digit_units: int = 128
    digit_k: int = 4
    digit_epochs: int = 60
    digit_batch: int = 256
    # FSQ against chapter 8's codebooks, at as many codes and equal epochs
    levels: tuple[int, ...] = (8, 4, 4)
    vq: ch08.Budget = ch08.BUDGETS["quick"]
    vq_epochs: int = 6

    def __post_init__(self) -> None:
        if self.k not in self.ks:
            raise ValueError(f"Budget.k = {self.k} must be one of ks = {self.ks}: its model is reused")


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), n_features=512, dim=64, toy_train=100_000, code_size=2048, epochs=20,
                   ae_epochs=30, digit_units=512, digit_epochs=50, levels=(8, 8, 8), vq=ch08.BUDGETS["full"],
                   vq_epochs=30),
    "smoke": Budget(n_train=256, n_test=128, n_features=16, dim=8, toy_train=512, toy_test=256, code_size=32,
                    ks=(2, 4), lams=(0.1, 0.4), epochs=1, aux_k=4, ae_code=8, ae_hidden=(16,), ae_epochs=1,
                    digit_units=16, digit_epochs=1, levels=(3, 3, 2), vq=ch08.BUDGETS["smoke"], vq_epochs=1),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

#: the quick run on more seeds, as ``python -m companion reproduce after-the-survey --seed S --json
#: companion/experiments/records/after_the_survey_seedS.json`` wrote it (the chapter runs seed 0)
SEED_RECORDS = {s: Path(__file__).parent / "records" / f"after_the_survey_seed{s}.json" for s in (1, 2)}


def seed_records() -> dict[int, dict]:
    """``{seed: record}`` of the saved quick runs on other seeds; read numbers with
    :func:`companion.experiments.core.metrics_of`."""
    return {s: json.loads(p.read_text()) for s, p in SEED_RECORDS.items()}


def _l1_at(m, l0: float) -> tuple[float, bool]:
    """The L1 SAEs' normalised error at L0 = ``l0``, read off their frontier by linear
    interpolation, and whether the frontier reaches that L0 (if not: the error of the L1 SAE
    whose L0 is nearest, and False)."""
    l0s, errs = m.series("l0", over="lam", model="l1"), m.series("nmse", over="lam", model="l1")
    points = sorted((l0s[lam], errs[lam]) for lam in l0s)
    for (a, ea), (b, eb) in zip(points, points[1:]):
        if a <= l0 <= b:
            return (ea + (eb - ea) * (l0 - a) / (b - a) if b > a else min(ea, eb)), True
    return min(points, key=lambda p: abs(p[0] - l0))[1], False


CLAIMS = claims(
    Claim("topk_recovers_features", "the TopK SAE recovers at least 90 % of the true features (cosine ≥ 0.9)",
          lambda m: m.value("recovered", model="topk", k=m["k"]) >= 0.9),
    Claim("topk_beats_l1_at_matched_l0", "at the TopK SAE's L0, the L1 SAEs' frontier (which must reach that L0) "
                                         "has a larger error",
          lambda m: m["l1_frontier_reaches_topk_l0"] == 1 and m.value("nmse", model="topk", k=m["k"]) < m["l1_nmse_at_topk_l0"]),
    Claim("digit_units_are_features", "the digits that most turn on a unit of the digit SAE mostly share a label, "
                                      "more than for the autoencoder's own code numbers or for random digits",
          lambda m: m["digit_top_label_share"] > 0.5
          and m["digit_top_label_share"] > m.value("digit_top_label_share", model="ae_code")
          > m.value("digit_top_label_share", model="random")),
    Claim("fsq_beats_collapsed_codebooks", "FSQ uses more of its codes, more evenly, than the learned codebooks "
                                           "without restarts, and reconstructs better than both",
          lambda m: all(m.value("test_used_fraction", model="fsq") > m.value("test_used_fraction", model=n)
                        and m.value("test_perplexity", model="fsq") > m.value("test_perplexity", model=n)
                        and m.value("test_recon", model="fsq") < m.value("test_recon", model=n) for n in ("loss", "ema"))),
    Claim("fsq_prior_beats_counts", "the PixelCNN needs fewer bits per FSQ code than the code frequencies alone",
          lambda m: m.value("test_bits_per_code", model="fsq_prior") < m["fsq_counts_bits_per_code"]),
)


TOP = 10            # the test digits shown for a unit of the digit SAE


def label_share(top: torch.Tensor, labels: torch.Tensor) -> float:
    """For rows of digit indices (units, TOP): the mean share of a row's digits that have the
    row's most common label."""
    got = labels[top]
    return (got == got.mode(dim=1).values[:, None]).float().mean().item()


def _sae(r: Run, name: str, b: Budget, x, config: SAEConfig, epochs: int, batch_size: int) -> SAE:
    return r.train(name, lambda: SAE(config), x, epochs=epochs, lr=b.toy_lr, batch_size=batch_size)


def _record_sae(r: Run, sae: SAE, x_test, directions=None, **dims) -> None:
    for metric, v in sae_usage(sae, x_test).items():
        r.record(metric, v, **dims)
    if directions is not None:
        found = feature_recovery(sae, directions)
        r.record("recovered", found["recovered"], **dims)
        r.record("mean_max_cos", found["mean_max_cos"], **dims)


def toy_sparse_autoencoders(b: Budget, r: Run) -> None:
    """TopK SAEs for each k, L1 SAEs for each λ, and the training choices switched off."""
    train = superposition(b.toy_train, n_features=b.n_features, dim=b.dim, rho=b.rho, seed=r.seed)
    test = superposition(b.toy_test, directions=train.directions, rho=b.rho, seed=r.seed + 1)
    r.results["directions"] = train.directions
    base = dict(input_dim=b.dim, code_size=b.code_size, aux_k=b.aux_k, dead_after=b.dead_after)
    for k in b.ks:
        model = _sae(r, f"topk_k{k}", b, train.x, SAEConfig(k=k, **base), b.epochs, b.toy_batch)
        _record_sae(r, model, test.x, train.directions, model="topk", k=k)
    for lam in b.lams:
        model = _sae(r, f"l1_lam{lam:g}", b, train.x, SAEConfig(activation="relu", lam=lam, **{**base, "aux_k": 0}),
                     b.epochs, b.toy_batch)
        _record_sae(r, model, test.x, train.directions, model="l1", lam=lam)
    for variant, change in VARIANTS.items():
        model = r.models[f"topk_k{b.k}"] if not change else \
            _sae(r, f"variant_{variant}", b, train.x, SAEConfig(k=b.k, **{**base, **change}), b.epochs, b.toy_batch)
        _record_sae(r, model, test.x, train.directions, model="topk", variant=variant)
    r.record("k", b.k)
    at, reached = _l1_at(r.metrics, r.metrics.value("l0", model="topk", k=b.k))
    r.record("l1_nmse_at_topk_l0", at)
    r.record("l1_frontier_reaches_topk_l0", float(reached))


def digit_features(b: Budget, r: Run, x_train, y_train, x_test, y_test) -> None:
    """A TopK SAE on an autoencoder's codes of digits; the test digits that most turn on each unit."""
    ae = r.train("digit_ae", lambda: Autoencoder(image_shape=tuple(x_train.shape[1:]), code_size=b.ae_code,
                                                 hidden=b.ae_hidden), x_train, epochs=b.ae_epochs, lr=1e-3)
    codes_train, codes_test = encode_all(ae, x_train), encode_all(ae, x_test)
    config = SAEConfig(input_dim=b.ae_code, code_size=b.digit_units, k=b.digit_k, aux_k=b.digit_units // 2,
                       dead_after=b.dead_after)
    sae = _sae(r, "digit_sae", b, codes_train, config, b.digit_epochs, b.digit_batch)
    _record_sae(r, sae, codes_test, model="digit_sae")
    z = encode_all(sae, codes_test)                                  # (N, m) on the test digits, on the CPU
    live = torch.nonzero((z > 0).sum(0) >= TOP).flatten()            # units on for at least TOP test digits
    top = z[:, live].topk(TOP, dim=0).indices.T                      # (live units, TOP) test digit indices
    order = torch.argsort((z[:, live] > 0).sum(0), descending=True)
    r.results["digit_units"], r.results["digit_top"] = live[order], top[order]
    r.record("digit_top_label_share", label_share(top, y_test))
    r.record("digit_live_units", len(live))
    # the same measure on the autoencoder's own code numbers, each read in both directions,
    # and on digits drawn at random
    both_signs = torch.cat([codes_test, -codes_test], dim=1)
    r.record("digit_top_label_share", label_share(both_signs.topk(TOP, dim=0).indices.T, y_test), model="ae_code")
    g = torch.Generator().manual_seed(r.seed)
    drawn = torch.stack([torch.randperm(len(y_test), generator=g)[:TOP] for _ in range(1000)])
    r.record("digit_top_label_share", label_share(drawn, y_test), model="random")


def fsq_against_vq(b: Budget, r: Run, x_train, x_test) -> None:
    """FSQ and chapter 8's three codebooks at as many codes and equal epochs; a prior over FSQ codes."""
    v = b.vq
    shape = tuple(x_train.shape[1:])
    fsq = VQVAEConfig(image_shape=shape, channels=v.channels, codebook="fsq", levels=b.levels)
    train = dict(epochs=b.vq_epochs, lr=v.lr, batch_size=v.batch_size)
    ch08.train_quantized(r, "fsq", fsq, x_train, x_test, **train)
    for name, codebook in ch08.CODEBOOKS.items():
        config = VQVAEConfig(image_shape=shape, channels=v.channels, num_codes=fsq.num_codes, code_dim=v.code_dim,
                             codebook=codebook)
        ch08.train_quantized(r, name, config, x_train, x_test, **train)
    ch08.train_prior(r, "fsq_prior", r.models["fsq"], x_train, x_test, v)
    r.record("fsq_counts_bits_per_code", math.log2(r.metrics.value("test_perplexity", model="fsq")))
    r.record("num_codes", fsq.num_codes)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """The toy SAEs, the digit SAE, and FSQ against VQ, on the run's device."""
    toy_sparse_autoencoders(b, r)
    (x_train, y_train), (x_test, y_test) = b.load()
    digit_features(b, r, x_train, y_train, x_test, y_test)
    fsq_against_vq(b, r, x_train, x_test)


def describe(b: Budget) -> str:
    return (f"TopK SAEs (m = {b.code_size}, k = {listed(b.ks)}) and L1 SAEs (λ = {listed(b.lams)}) on "
            f"{b.n_features} sparse features in {b.dim} dimensions (ρ = {b.rho:g}), {b.epochs} epochs: feature "
            f"recovery, dead units, error against L0, and Gao et al.'s training choices switched off; a TopK SAE "
            f"(m = {b.digit_units}, k = {b.digit_k}) on an autoencoder's {b.ae_code}-dimensional codes of digits; "
            f"FSQ (levels {dashed(b.levels)}) against chapter 8's three codebooks at as many codes, {b.vq_epochs} "
            f"epochs each, and a PixelCNN prior over the FSQ codes; {b.data_text()}.")
