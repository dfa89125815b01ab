"""Chapter 1's experiment: autoencoders against PCA on digits.

Three things are trained: a linear autoencoder (does gradient descent find PCA's subspace?),
a 2-D autoencoder with a cross-entropy loss (the model the chapter explores), and a sweep of
non-linear autoencoders over code sizes, each beside PCA with the same code size.
"""
from __future__ import annotations

from dataclasses import dataclass

from companion.experiments.core import Claim, Digits, Run, claims, dashed, experiment_run, listed, references
from companion.metrics import encode_all, linear_probe_accuracy, principal_angles, reconstruction_error
from companion.models import PCA, Autoencoder, AutoencoderConfig

NAME = "autoencoder"
CHAPTER = "chapters/01_autoencoder"


@dataclass(frozen=True)
class Budget(Digits):
    """Data, sizes and training lengths of the three parts of the experiment."""

    code_sizes: tuple[int, ...] = (2, 4, 8, 16, 30)
    hidden: tuple[int, ...] = (256,)        # the sweep's encoder (the decoder mirrors it)
    epochs: int = 30
    lr: float = 2e-3
    batch_size: int = 128
    linear_code_size: int = 16
    linear_epochs: int = 200
    linear_lr: float = 1e-2
    linear_batch_size: int = 500
    explorer_hidden: tuple[int, ...] = (512, 128)   # the 2-D autoencoder with cross-entropy
    explorer_epochs: int = 30


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), hidden=(1000, 500, 250), epochs=50, linear_epochs=400, explorer_epochs=50),
    "smoke": Budget(n_train=256, n_test=128, code_sizes=(2, 16, 30), hidden=(32,), epochs=1, linear_epochs=2,
                    explorer_hidden=(32,), explorer_epochs=2),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("linear_spans_pca", "the linear autoencoder's subspace lies within 5° of PCA's",
          lambda m: m["linear_ae_max_angle_deg_k16"] < 5.0),
    Claim("training_reduces_loss", "training cuts the 2-D autoencoder's loss by at least a quarter",
          lambda m: m["explorer_final_over_first_loss"] < 0.75),
    Claim("explorer_beats_pca", "with 2-D codes the autoencoder reconstructs held-out digits better than PCA",
          lambda m: m["explorer_test_mse"] < m["pca_test_mse_k2"]),
    Claim("explorer_codes_separate_classes", "its 2-D codes are better linear-probe inputs than PCA's",
          lambda m: m["explorer_probe_acc"] > m["pca2_probe_acc"]),
    Claim("ae_beats_pca", "the non-linear autoencoder beats PCA at k = 2 and k = 16",
          lambda m: all(m.value("test_mse_k{k}", model="ae", k=k) < m.value("test_mse_k{k}", model="pca", k=k)
                        for k in (2, 16))),
    Claim("pca_near_published", "PCA's k = 30 error is near Hinton & Salakhutdinov's 13.87",
          lambda m: 10 < m["pca_test_mse_k30"] < 20),
)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train the three parts on the run's device and measure them on the held-out split."""
    (x_train, y_train), (x_test, y_test) = b.load()
    shape = tuple(x_train.shape[1:])

    # a linear autoencoder and the principal subspace of the same size
    k = b.linear_code_size
    linear = r.train("linear", lambda: Autoencoder(AutoencoderConfig(image_shape=shape, code_size=k, hidden=(),
                                                                     linear=True)),
                     x_train, epochs=b.linear_epochs, lr=b.linear_lr, batch_size=b.linear_batch_size)
    pca_linear = r.models["pca_linear"] = PCA(k).fit(x_train)
    w = linear.decoder[0][1].weight.detach().cpu()          # (d, k): the decoder's columns span its image
    angles = r.results["linear_angles"] = principal_angles(w, pca_linear.components)
    r.record("max_angle_deg_k{k}", angles.max(), model="linear_ae", k=k)
    r.record("test_mse_k{k}", reconstruction_error(linear, x_test), model="linear_ae", k=k)

    # the 2-D autoencoder the chapter explores, with the Bernoulli cross-entropy
    explorer = r.train("explorer", lambda: Autoencoder(AutoencoderConfig(
        image_shape=shape, code_size=2, hidden=b.explorer_hidden, likelihood="bernoulli")),
        x_train, epochs=b.explorer_epochs, lr=b.lr, batch_size=b.batch_size, val=x_test)
    pca2 = r.models["pca2"] = PCA(2).fit(x_train)
    h = r.histories["explorer"]
    r.record("final_over_first_loss", h.train["loss"][-1] / h.train["loss"][0], model="explorer")
    r.record("test_mse", reconstruction_error(explorer, x_test), model="explorer")
    r.record("probe_acc", linear_probe_accuracy(encode_all(explorer, x_train), y_train,
                                                encode_all(explorer, x_test), y_test), model="explorer")
    r.record("probe_acc", linear_probe_accuracy(pca2.encode(x_train), y_train, pca2.encode(x_test), y_test),
             model="pca2")

    # the sweep over code sizes: each k, an autoencoder and PCA
    for k in b.code_sizes:
        model = r.train(f"ae_k{k}", lambda: Autoencoder(AutoencoderConfig(image_shape=shape, code_size=k,
                                                                          hidden=b.hidden, out_act="sigmoid")),
                        x_train, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size)
        r.record("test_mse_k{k}", reconstruction_error(model, x_test), model="ae", k=k)
        pca = r.models[f"pca_k{k}"] = PCA(k).fit(x_train)
        r.record("test_mse_k{k}", reconstruction_error(pca, x_test), model="pca", k=k)


def describe(b: Budget) -> str:
    return (f"MLP autoencoders ({dashed(b.hidden)} mirrored, sigmoid outputs, squared error) vs PCA, code sizes "
            f"{listed(b.code_sizes)}, {b.epochs} epochs each; a linear autoencoder (k = {b.linear_code_size}, "
            f"{b.linear_epochs} epochs) against PCA's subspace; a 2-D autoencoder ({dashed(b.explorer_hidden)}, "
            f"cross-entropy, {b.explorer_epochs} epochs); {b.data_text()}.")
