"""Chapter 2's experiment: a denoising autoencoder against a plain one of the same shape.

Both have sigmoid hidden units and outputs and the squared error, start from the same
weights, and see the same batches; the denoiser is fed masked digits and asked for the clean
ones. Measured: error against the clean digits as the held-out inputs are corrupted more and
more, the roughness of the first-layer filters, and linear probes on the codes.
"""
from __future__ import annotations

from dataclasses import dataclass

from companion.experiments.core import Claim, Digits, Run, claims, dashed, experiment_run, listed, references
from companion.metrics import corruption_curve, encode_all, filter_roughness, linear_probe_accuracy
from companion.models import Autoencoder, AutoencoderConfig, DenoisingAutoencoder, DenoisingAutoencoderConfig

NAME = "denoising"
CHAPTER = "chapters/02_denoising_autoencoder"


@dataclass(frozen=True)
class Budget(Digits):
    noise: str = "masking"
    noise_level: float = 0.5                 # ν of the training corruption
    code_size: int = 32
    hidden: tuple[int, ...] = (256,)
    epochs: int = 30
    lr: float = 2e-3
    batch_size: int = 128
    levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)   # held-out corruption


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), epochs=100),
    "smoke": Budget(n_train=256, n_test=128, hidden=(32,), code_size=8, epochs=1, levels=(0.0, 0.5)),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("dae_repairs", "at its training level the denoiser's error is at least 20% below the autoencoder's",
          lambda m: m["dae_error_reduction"] >= 0.2),
    Claim("dae_beats_input", "the denoiser's output is closer to the clean digit than the corrupted input",
          lambda m: m["dae_test_mse_noisy"] < m["input_test_mse_noisy"]),
    Claim("dae_worse_on_clean", "on clean inputs the denoiser is worse than the plain autoencoder",
          lambda m: m["dae_test_mse_clean"] > m["ae_test_mse_clean"]),
    Claim("dae_filters_smoother", "the denoiser's filters are smoother (roughness below 0.8× the plain one's)",
          lambda m: m["dae_filter_roughness"] < 0.8 * m["ae_filter_roughness"]),
    Claim("codes_probe_well", "a linear probe reads the digit from either code with more than 80% accuracy",
          lambda m: min(m["ae_linear_probe_acc"], m["dae_linear_probe_acc"]) > 0.8),
)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train both models on the run's device; measure them on the held-out split."""
    (x_train, y_train), (x_test, y_test) = b.load()
    shape = tuple(x_train.shape[1:])
    common = dict(image_shape=shape, code_size=b.code_size, hidden=b.hidden, act="sigmoid", out_act="sigmoid")
    train = dict(epochs=b.epochs, lr=b.lr, batch_size=b.batch_size)
    r.train("ae", lambda: Autoencoder(AutoencoderConfig(**common)), x_train, **train)
    r.train("dae", lambda: DenoisingAutoencoder(DenoisingAutoencoderConfig(**common, noise=b.noise,
                                                                           noise_level=b.noise_level)),
            x_train, **train)

    levels = list(b.levels)
    curve = corruption_curve({"ae": r.models["ae"], "dae": r.models["dae"]}, x_test, levels, kind=b.noise, seed=r.seed)
    r.results["levels"], r.results["curve"] = levels, curve
    i = min(range(len(levels)), key=lambda j: abs(levels[j] - b.noise_level))
    for name in ("input", "ae", "dae"):
        r.record("test_mse_noisy", curve[name][i], model=name)
        r.record("test_mse_clean", curve[name][0] if levels[0] == 0 else float("nan"), model=name)
    r.record("error_reduction", 1 - curve["dae"][i] / curve["ae"][i], model="dae")
    for name in ("ae", "dae"):
        m = r.models[name]
        r.record("linear_probe_acc", linear_probe_accuracy(encode_all(m, x_train), y_train,
                                                           encode_all(m, x_test), y_test), model=name)
        r.record("filter_roughness", filter_roughness(m.encoder[1].weight, shape), model=name)
    r.record("linear_probe_acc", linear_probe_accuracy(x_train, y_train, x_test, y_test), model="pixels")


def describe(b: Budget) -> str:
    return (f"Denoising vs plain autoencoder (784-{dashed(b.hidden)}-{b.code_size}, sigmoid units, "
            f"{b.epochs} epochs) trained with {b.noise} noise ν = {b.noise_level:g}: held-out error against "
            f"clean digits at corruption levels {listed(b.levels)}, linear probes, "
            f"filter roughness; {b.data_text()}.")
