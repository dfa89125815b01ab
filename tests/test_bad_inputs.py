"""Every public function, called the way a new user gets it wrong: the table below holds, for
each one, bad calls with the exception type they must raise and words the message must hold
(what was expected). A completeness test keeps the table in step with the package: a new
public function fails it until it has a row here.

Raw errors from torch, NumPy or the standard library (an IndexError from deep inside, an
AttributeError on a str) count as failures, and so do silent passes.
"""
import importlib
import inspect
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from companion.train import History

MODULES = ["companion", "companion.runtime", "companion.losses", "companion.train", "companion.nn", "companion.data",
           "companion.data.corrupt", "companion.data.sequences", "companion.data.idx", "companion.data.superposition",
           "companion.metrics.dictionary", "companion.models.fsq",
           "companion.metrics.codebook", "companion.metrics.disentanglement", "companion.metrics.filters",
           "companion.metrics.jacobian", "companion.metrics.latents", "companion.metrics.likelihood", "companion.metrics.probes",
           "companion.metrics.reconstruction", "companion.metrics.sequences", "companion.metrics.subspace",
           "companion.models.base", "companion.models.vq", "companion.models.ksparse", "companion.models.pixelcnn",
           "companion.models.pixelsnail", "companion.viz.plots", "companion.viz.diagrams", "companion.viz.quote", "companion.viz.source",
           "companion.viz.widgets", "companion.viz.browser", "companion.exercises.core", "companion.experiments.core"]

#: public functions that take no argument a user could get wrong
NO_INPUT = {"companion.data:on_disk", "companion.viz.widgets:default_mode", "companion.viz.quote:building_book",
            "companion.models.base:dataclass_like",
            "companion.viz.diagrams:vae_graphical_model", "companion.experiments.ch09_vq_vae2:procedure",
            "companion.runtime:preserved_rngs", "companion.runtime:plain"}     # a predicate: True or False for anything


def public_functions() -> set[str]:
    out = set()
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, f in vars(module).items():
            if not attr.startswith("_") and inspect.isfunction(f) and f.__module__ == name:
                out.add(f"{name}:{attr}")
    return out


def X(n=4):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def AE():
    from companion.models import Autoencoder
    return Autoencoder(code_size=2, hidden=(8,))


def VAE():
    from companion.models import VAE as _VAE
    return _VAE(latent_size=2, hidden=(8,))


def VQ():
    from companion.models import VQVAE
    return VQVAE(num_codes=8, code_dim=4, channels=(4, 8))


def VQ2():
    from companion.models import VQVAE2
    return VQVAE2(channels=(4, 8), code_dim=4, num_codes_top=8, num_codes_bottom=8)


def TD():
    from companion.models.tdvae import TDVAE
    return TDVAE(belief_size=8, z_size=2, hidden=8)


def M(path):
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


NAN = float("nan")

#: function → [(call, exception type, regex the message must match)]
TABLE = {
    # --- companion
    "companion.runtime:get_device": [(lambda f: f("tpu"), ValueError, "unknown device"),
                                     (lambda f: f(3), TypeError, "device must be"),
                                     (lambda f: f(None), TypeError, "leave things where they are")],
    "companion.runtime:seed_everything": [(lambda f: f(-1), ValueError, "non-negative"),
                                          (lambda f: f("a"), TypeError, "seed must be a non-negative int"),
                                          (lambda f: f(0, threads=0), ValueError, "threads")],
    "companion.runtime:check_seed": [(lambda f: f(-1), ValueError, "non-negative int"),
                                     (lambda f: f(True), TypeError, "non-negative int"),
                                     (lambda f: f(1.0), TypeError, "non-negative int")],
    "companion.runtime:check_writable": [(lambda f: f(3), TypeError, "str or a Path"),
                                         (lambda f: f("/"), ValueError, "is a folder"),
                                         (lambda f: f("/etc/passwd/x.json"), ValueError, "cannot be written")],
    "companion.runtime:check_count": [(lambda f: f("n", 0), ValueError, "n must be an int ≥ 1"),
                                      (lambda f: f("n", True), ValueError, "n must be an int"),
                                      (lambda f: f("n", 2.0), ValueError, "n must be an int")],
    "companion.runtime:drawing_from": [(lambda f: f(3).__enter__(), TypeError, "CPU torch.Generator")],
    # --- losses
    "companion.losses:finite_range": [(lambda f: f(torch.tensor([NAN]), "x"), ValueError, "NaN"),
                                      (lambda f: f([1.0], "x"), TypeError, "tensor")],
    "companion.losses:sum_per_example": [(lambda f: f(torch.tensor(1.0)), ValueError, r"batch \(B, \.\.\.\)"),
                                         (lambda f: f([1.0, 2.0]), TypeError, "tensor")],
    "companion.losses:reconstruction": [(lambda f: f(X(), X(), "l1"), ValueError, "unknown likelihood"),
                                        (lambda f: f(X(), X(3), "gaussian"), ValueError, "does not match"),
                                        (lambda f: f(X(), X() * 255, "bernoulli"), ValueError, r"\[0, 1\]")],
    "companion.losses:decoder_mean": [(lambda f: f(X(), "l1"), ValueError, "unknown likelihood"),
                                      (lambda f: f("logits", "bernoulli"), TypeError, "tensor")],
    "companion.losses:mse": [(lambda f: f(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "does not match"),
                             (lambda f: f(torch.zeros(2, 3), torch.full((2, 3), NAN)), ValueError, "NaN"),
                             (lambda f: f(torch.zeros(3), torch.zeros(3)), ValueError, "batch")],
    "companion.losses:bce_with_logits": [(lambda f: f(torch.zeros(2, 3), torch.full((2, 3), 2.0)), ValueError,
                                          r"\[0, 1\]")],
    "companion.losses:kl_bernoulli": [(lambda f: f(1.5, torch.full((3,), 0.2)), ValueError, r"strictly inside \(0, 1\)"),
                                      (lambda f: f(torch.full((3,), 0.1), torch.full((4,), 0.2)), ValueError,
                                       "does not broadcast"),
                                      (lambda f: f(0.1, [0.2]), TypeError, "tensor")],
    "companion.losses:kl_decomposition": [
        (lambda f: f(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 3), 10), ValueError, "one shape"),
        (lambda f: f(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2), 3), ValueError, "dataset_size"),
        (lambda f: f(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2), 10, "mean"), ValueError, "'mss'"),
        (lambda f: f(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), 10), ValueError, "at least 2"),
        (lambda f: f([0.0], torch.zeros(4, 2), torch.zeros(4, 2), 10), TypeError, "tensor")],
    "companion.losses:kl_normal_std_normal": [(lambda f: f(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
                                               "same shape"),
                                              (lambda f: f([0.0], [0.0]), TypeError, "tensor")],
    "companion.losses:kl_normal_std_normal_per_dim": [(lambda f: f(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
                                                       "same shape"),
                                                      (lambda f: f([0.0], [0.0]), TypeError, "tensor")],
    "companion.losses:controlled_capacity": [(lambda f: f(torch.ones(()), -1.0, 1.0), ValueError, "capacity"),
                                             (lambda f: f(torch.ones(()), 1.0, -1.0), ValueError, "gamma"),
                                             (lambda f: f(1.0, 1.0, 1.0), TypeError, "tensor")],
    "companion.losses:contractive_penalty": [(lambda f: f(torch.zeros(2, 3), torch.zeros(4, 5)), ValueError,
                                              r"h \(B, m\) and W \(m, d\)"),
                                             (lambda f: f("h", "w"), TypeError, "tensor")],
    "companion.losses:bits_per_dim": [(lambda f: f(1.0, 0), ValueError, "dims"),
                                      (lambda f: f("1", 784), TypeError, "number")],
    # --- training and checkpoints
    "companion.train:fit": [(lambda f: f(AE(), X(), epochs=0), ValueError, "epochs"),
                            (lambda f: f(AE(), X(), epochs=1, lr=-1), ValueError, "lr"),
                            (lambda f: f(AE(), X(), epochs=1, batch_size=0), ValueError, "batch_size"),
                            (lambda f: f(AE(), X()[:0], epochs=1), ValueError, "N ≥ 1"),
                            (lambda f: f(AE(), "digits", epochs=1), TypeError, "tensor"),
                            (lambda f: f("model", X(), epochs=1), TypeError, "nn.Module")],
    "companion.train:evaluate": [(lambda f: f(AE(), X(), batch_size=0), ValueError, "batch_size"),
                                 (lambda f: f("model", X()), TypeError, "nn.Module")],
    "companion.train:save_checkpoint": [(lambda f: f("model", "/tmp/x.safetensors"), TypeError, "nn.Module")],
    "companion.train:load_checkpoint": [(lambda f: f("/nonexistent/x.safetensors"), FileNotFoundError, "no checkpoint"),
                                        (lambda f: f(3), TypeError, "path")],
    # --- layers
    "companion.nn:activation": [(lambda f: f("swishy"), ValueError, "unknown activation")],
    "companion.nn:check_features": [(lambda f: f(torch.zeros(2, 3), 4, "MLP"), ValueError, "of 4 features"),
                                    (lambda f: f([1.0], 1, "MLP"), TypeError, "floating-point")],
    # --- data
    "companion.data:describe": [(lambda f: f("imagenet"), ValueError, "unknown data set")],
    "companion.data:load": [(lambda f: f("imagenet"), ValueError, "unknown data set"),
                            (lambda f: f("mnist-5k", "validation"), ValueError, "splits"),
                            (lambda f: f("mnist-5k", seed=-1), ValueError, "seed")],
    "companion.data:load_first": [(lambda f: f(("mnist-5k",), n_train=0), ValueError, "n_train"),
                                  (lambda f: f(("imagenet",)), ValueError, "unknown data set")],
    "companion.data:pad_to": [(lambda f: f(torch.zeros(2, 28, 28), 32), ValueError, r"\(N, C, H, W\)"),
                              (lambda f: f(X(), 20), ValueError, "size")],
    "companion.data.corrupt:masking_noise": [(lambda f: f(X(), 1.5), ValueError, r"\[0, 1\]"),
                                             (lambda f: f([0.5], 0.1), TypeError, "torch.Tensor")],
    "companion.data.corrupt:gaussian_noise": [(lambda f: f(X(), -1.0), ValueError, "sigma"),
                                              (lambda f: f(X().long(), 0.1), TypeError, "floating-point")],
    "companion.data.corrupt:salt_and_pepper": [(lambda f: f(X(), -0.1), ValueError, r"\[0, 1\]")],
    "companion.data.corrupt:corrupt": [(lambda f: f(X(), "blur", 0.1), ValueError, "unknown corruption")],
    "companion.data.sequences:moving_digits": [(lambda f: f(torch.zeros(3, 28, 28)), ValueError, r"\(M, C, H, W\)"),
                                               (lambda f: f(X(), length=0), ValueError, "length")],
    "companion.data.sequences:oscillator": [(lambda f: f(0), ValueError, "n must be"),
                                            (lambda f: f(4, render="svg"), ValueError, "render"),
                                            (lambda f: f(4, period=1.0), ValueError, "period")],
    "companion.data.sequences:dot_position": [(lambda f: f(torch.zeros(3, 1)), ValueError, "at least 2 pixels"),
                                              (lambda f: f("frames"), ValueError, "float tensor")],
    "companion.data.sequences:circle": [(lambda f: f("seqs"), TypeError, "Sequences"),
                                       (lambda f: f(M("companion.data.sequences:oscillator")(2), width=0), ValueError,
                                        "width")],
    "companion.data.idx:read_idx": [(lambda f: f("/nonexistent/file.idx"), FileNotFoundError, "not found")],
    "companion.data.idx:write_idx": [(lambda f: f("/tmp/x.idx", np.zeros(3, dtype=np.complex64)), TypeError,
                                      "unsupported dtype"),
                                     (lambda f: f("/tmp/x.idx", "array"), TypeError, "unsupported dtype")],
    # --- metrics
    "companion.data.superposition:feature_directions": [(lambda f: f(0, 4), ValueError, "n_features must be"),
                                                        (lambda f: f(4, 2.5), ValueError, "dim must be an int")],
    "companion.data.superposition:superposition": [
        (lambda f: f(10, rho=0.0), ValueError, r"probability in \(0, 1\]"),
        (lambda f: f(10, s_min=1.0), ValueError, r"s_min must lie in \[0, 1\)"),
        (lambda f: f(10, directions=torch.ones(3, 2)), ValueError, "unit vectors"),
        (lambda f: f(10, directions=[[1.0, 0.0]]), ValueError, r"float tensor \(n_features, dim\)"),
        (lambda f: f(0), ValueError, "n must be")],
    "companion.metrics.dictionary:feature_recovery": [
        (lambda f: f(AE(), torch.eye(4)), TypeError, "an SAE or its unit directions"),
        (lambda f: f(torch.eye(4), torch.eye(3)), ValueError, r"\(F, d=4\)"),
        (lambda f: f(torch.eye(4), torch.eye(4), threshold=2), ValueError, r"cosine in \[-1, 1\]")],
    "companion.metrics.dictionary:sae_usage": [
        (lambda f: f(AE(), X()), TypeError, "needs an SAE"),
        (lambda f: f(M("companion.models:SAE")(input_dim=4), torch.zeros(3, 5)), ValueError, r"shape \(B, 4\)"),
        (lambda f: f(M("companion.models:SAE")(input_dim=4), torch.zeros(3, 4), batch_size=0), ValueError,
         "batch_size")],
    "companion.models.fsq:check_levels": [(lambda f: f(()), ValueError, "non-empty tuple"),
                                          (lambda f: f((4, 1)), ValueError, "ints ≥ 2"),
                                          (lambda f: f(torch.tensor([4, 4])), ValueError, "tuple of ints")],
    "companion.metrics.codebook:code_counts": [(lambda f: f(AE(), X()), TypeError, "vector-quantised"),
                                               (lambda f: f(VQ(), X()[:0]), ValueError, "N ≥ 1")],
    "companion.metrics.codebook:codebook_usage": [(lambda f: f(AE(), X()), TypeError, "vector-quantised"),
                                                  (lambda f: f(VQ(), X(), batch_size=0), ValueError, "batch_size")],
    "companion.metrics.codebook:code_grids": [(lambda f: f(AE(), X()), TypeError, "vector-quantised"),
                                              (lambda f: f(VQ(), X()[:0]), ValueError, "N ≥ 1")],
    "companion.metrics.codebook:level_codes": [(lambda f: f(VQ(), torch.rand(2, 1, 32, 32)), TypeError, "VQVAE2"),
                                               (lambda f: f(VQ2(), torch.rand(0, 1, 32, 32)), ValueError, "N ≥ 1")],
    "companion.metrics.codebook:swap_agreement": [(lambda f: f(VQ(), torch.rand(4, 1, 32, 32), torch.arange(4),
                                                               lambda x: x), TypeError, "VQVAE2"),
                                                  (lambda f: f(VQ2(), torch.rand(4, 1, 32, 32), torch.arange(3),
                                                               lambda x: x), ValueError, "labels")],
    "companion.metrics.disentanglement:discretize": [(lambda f: f(np.zeros(5)), ValueError, "2-D"),
                                                     (lambda f: f(np.zeros((5, 2)), bins=1), ValueError, "bins")],
    "companion.metrics.disentanglement:factor_of_each": [
        (lambda f: f(np.zeros((3, 2)), ["x"]), ValueError, "one per column"),
        (lambda f: f(np.zeros(3), ["x"]), ValueError, "2-D"),
        (lambda f: f(np.zeros((3, 2)), "xy"), ValueError, "names")],
    "companion.metrics.disentanglement:entropy": [(lambda f: f(np.zeros((5, 2))), TypeError, "integers")],
    "companion.metrics.disentanglement:mutual_information": [
        (lambda f: f(np.zeros((5, 2), int), np.zeros((4, 2), int)), ValueError, "same number of rows")],
    "companion.metrics.disentanglement:mig_gaps": [(lambda f: f(np.zeros((3, 2)), np.ones(3)), ValueError, "entropies"),
                                                   (lambda f: f(np.zeros((1, 2)), np.ones(2)), ValueError, "at least 2")],
    "companion.metrics.disentanglement:mig": [(lambda f: f(np.zeros((5, 2)), np.zeros((5, 2))), TypeError, "integers")],
    "companion.metrics.disentanglement:beta_vae_score": [
        (lambda f: f(np.zeros((5, 3, 2)), np.zeros((5, 3, 2)), np.zeros(4, int)), ValueError, "labels"),
        (lambda f: f(np.zeros((5, 3, 2)), np.zeros((5, 3, 2)), np.zeros(5, int), train_fraction=2), ValueError,
         "train_fraction"),
        (lambda f: f(np.zeros((5, 2)), np.zeros((5, 2)), np.zeros(5, int)), ValueError, "3-D")],
    "companion.metrics.disentanglement:factor_vae_score": [
        (lambda f: f(np.zeros((5, 3, 2)), np.zeros(4, int), np.ones(2), 2), ValueError, "labels"),
        (lambda f: f(np.zeros((5, 3, 2)), np.zeros(5, int), np.ones(3), 2), ValueError, "global_std")],
    "companion.metrics.disentanglement:beta_vae_pairs": [(lambda f: f((3, 6), 0), ValueError, "points"),
                                                         (lambda f: f((3, 0), 4), ValueError, "factor_sizes")],
    "companion.metrics.disentanglement:factor_vae_batches": [(lambda f: f((3, 6), 0), ValueError, "points"),
                                                             (lambda f: f((3, 6), 4, batch_size=0), ValueError,
                                                              "batch_size")],
    "companion.metrics.disentanglement:evaluate": [(lambda f: f("not callable", None), TypeError, "representation"),
                                                   (lambda f: f({"a": "not callable"}, None), TypeError, "dict of them"),
                                                   (lambda f: f(lambda x: x, "dataset"), TypeError, "dataset")],
    "companion.metrics.disentanglement:dsprites_report": [
        (lambda f: f(M("companion.models:VAE")(latent_size=2, hidden=(8,)), "dataset", X()), TypeError, "dataset"),
        (lambda f: f(AE(), "dataset", X()), TypeError, "needs a VAE")],
    "companion.metrics.filters:filter_roughness": [(lambda f: f(torch.zeros(3), (2, 2)), ValueError, "2-D"),
                                                   (lambda f: f(torch.zeros(3, 5), (2, 2)), ValueError, "pixels")],
    "companion.metrics.filters:dead_units": [(lambda f: f(torch.zeros(3)), ValueError, "2-D"),
                                             (lambda f: f("codes"), ValueError, "2-D")],
    "companion.metrics.jacobian:encoder_jacobian": [(lambda f: f(AE(), torch.zeros(1, 28, 28)), ValueError, "expected"),
                                                    (lambda f: f("model", X()), TypeError, "encode")],
    "companion.metrics.jacobian:jacobian_norms": [(lambda f: f(AE(), X(), batch_size=0), ValueError, "batch_size"),
                                                  (lambda f: f(AE(), X()[:0]), ValueError, "B ≥ 1")],
    "companion.metrics.jacobian:jacobian_singular_values": [(lambda f: f(AE(), X(), batch_size=0), ValueError,
                                                             "batch_size")],
    "companion.metrics.likelihood:importance_weighted_log_likelihood": [
        (lambda f: f(AE(), X(), k=2), TypeError, "probabilistic model"),
        (lambda f: f(M("companion.models:VAE")(latent_size=2, hidden=(8,)), X(), k=0), ValueError, "k must be")],
    "companion.metrics.probes:linear_probe": [(lambda f: f(np.zeros((5, 2)), np.zeros(4)), ValueError, "same number of rows")],
    "companion.metrics.probes:linear_probe_accuracy": [
        (lambda f: f(np.zeros((5, 2)), np.zeros(5), np.zeros((3, 3)), np.zeros(3)), ValueError, "dims")],
    "companion.metrics.probes:linear_probe_r2": [
        (lambda f: f(torch.zeros(5, 2), torch.zeros(4), torch.zeros(3, 2), torch.zeros(3)), ValueError,
         "same number of rows")],
    "companion.metrics.reconstruction:reconstruction_error": [(lambda f: f(AE(), X()[:0]), ValueError, "N ≥ 1"),
                                                              (lambda f: f(AE(), X(), target=X(3)), ValueError,
                                                               "does not match")],
    "companion.metrics.reconstruction:encode_all": [(lambda f: f(AE(), X(), batch_size=0), ValueError, "batch_size")],
    "companion.metrics.reconstruction:corruption_curve": [(lambda f: f({"ae": AE()}, X(), [0.1], kind="blur"),
                                                           ValueError, "unknown corruption"),
                                                          (lambda f: f({}, X(), [0.1]), ValueError, "models")],
    "companion.metrics.sequences:jumpy_errors": [
        (lambda f: f(TD(), torch.rand(2, 6, 1, 28, 28), 1, [0], mean_frame=torch.zeros(784)), ValueError, "jumps"),
        (lambda f: f(TD(), torch.rand(2, 6, 1, 28, 28), 4, [3], mean_frame=torch.zeros(784)), ValueError, "inside")],
    "companion.metrics.sequences:belief_probe": [(lambda f: f(TD(), "train", "test", "targets"), TypeError, "tensor")],
    "companion.metrics.subspace:principal_angles": [(lambda f: f(torch.zeros(3, 2), torch.zeros(4, 2)), ValueError,
                                                     r"\(d, p\) and \(d, q\)"),
                                                    (lambda f: f([1.0], [1.0]), TypeError, "tensors")],
    # --- model helpers
    "companion.models.base:check_images": [(lambda f: f(AE(), X().double()), TypeError, "float32"),
                                           (lambda f: f(AE(), X()[:0]), ValueError, "empty batch")],
    "companion.models.base:check_input": [(lambda f: f(torch.full((1, 2), NAN), name="m", shape=(2,),
                                                       dtype=torch.float32), ValueError, "NaN")],
    "companion.models.base:model_device": [(lambda f: f("model"), TypeError, "nn.Module")],
    "companion.models.base:model_dtype": [(lambda f: f("model"), TypeError, "nn.Module")],
    "companion.models.base:device_of": [(lambda f: f(3), TypeError, "model or a method")],
    "companion.models.base:positive_int": [(lambda f: f(SimpleNamespace(k=0), "k"), ValueError, "positive int")],
    "companion.models.base:choice": [(lambda f: f(SimpleNamespace(k="a"), "k", ("b",)), ValueError, "one of")],
    "companion.models.base:config_dict": [(lambda f: f({"k": 1}), TypeError, "config dataclass")],
    "companion.models.base:image_shape": [(lambda f: f(SimpleNamespace(image_shape=(28, 28)), "image_shape"),
                                           ValueError, r"\(C, H, W\)")],
    "companion.models.base:finite_at_least": [(lambda f: f(SimpleNamespace(b=NAN), "b"), ValueError, "finite number")],
    "companion.models.base:in_open_unit_interval": [(lambda f: f(SimpleNamespace(g=1.0), "g"), ValueError,
                                                     r"\(0, 1\)")],
    "companion.models.vq:nearest_code": [(lambda f: f(torch.zeros(3, 4), torch.zeros(5, 3)), ValueError, "same D")],
    "companion.models.vq:perplexity": [(lambda f: f(torch.zeros(2, 3)), ValueError, r"counts \(K,\)"),
                                       (lambda f: f(torch.tensor([1, -1])), ValueError, "non-negative")],
    "companion.models.vq:pixel_likelihood": [(lambda f: f(X(), X(), "l1"), ValueError, "unknown likelihood")],
    "companion.models.vq:check_codebook_fields": [(lambda f: f(SimpleNamespace(num_codes=0), ("num_codes",)),
                                                   ValueError, "positive int")],
    "companion.models.ksparse:topk_sparsify": [(lambda f: f(torch.zeros(2, 5), 6), ValueError, "1 ≤ k ≤ 5"),
                                               (lambda f: f(torch.zeros(5), 1), ValueError, r"\(B, m\)")],
    "companion.models.pixelcnn:repeat_codes": [(lambda f: f(torch.zeros(2, 3, 3, dtype=torch.long), (4, 4)),
                                                ValueError, "whole multiple")],
    "companion.models.pixelcnn:stack_condition": [(lambda f: f(torch.zeros(2, 4, 4), torch.zeros(2, 4)), ValueError,
                                                   r"codes \(B, h, w\)")],
    "companion.models.pixelsnail:causal_mask": [(lambda f: f(0), ValueError, "n must be")],
    # --- viz
    "companion.metrics.latents:kl_per_dimension": [(lambda f: f(AE(), X()), TypeError, "posterior_params"),
                                                   (lambda f: f(VAE(), X(1)), ValueError, "at least 2")],
    "companion.metrics.latents:active_units": [(lambda f: f(VAE(), X(), by="mean"), ValueError, "by must be"),
                                               (lambda f: f(VAE(), X(), -1.0), ValueError, "threshold")],
    "companion.metrics.reconstruction:perturbation_gain": [(lambda f: f(torch.nn.Linear(2, 2), X()), TypeError, "encode"),
                                                          (lambda f: f(AE(), X(), eps=0.0), ValueError, "eps"),
                                                          (lambda f: f(AE(), X().long()), ValueError, "float batch")],
    "companion.viz.diagrams:describe_layer": [(lambda f: f("Linear"), TypeError, "nn.Module")],
    "companion.viz.diagrams:trace_layers": [(lambda f: f(lambda x: x, X()), TypeError, "nn.Module")],
    "companion.viz.diagrams:architecture": [(lambda f: f(torch.nn.Linear(2, 2)), TypeError, "Autoencoder")],
    "companion.viz.diagrams:state_space_model": [(lambda f: f(1), ValueError, "2…12"),
                                                 (lambda f: f(2.5), ValueError, "int")],
    "companion.viz.diagrams:tdvae_training_graph": [(lambda f: f(AE()), TypeError, "TDVAE")],
    "companion.viz.diagrams:gradient_reaches_parameters": [(lambda f: f("yes"), TypeError, "True or False")],
    "companion.viz.diagrams:reparameterisation_graph": [(lambda f: f([None]), ValueError, "two axes")],
    "companion.viz.diagrams:procedure_markdown": [(lambda f: f(["step"]), TypeError, "tuples")],
    "companion.viz.plots:tile": [(lambda f: f(torch.zeros(2, 5, 8, 8)), ValueError, "1 or 3 channels"),
                                 (lambda f: f(torch.zeros(8)), ValueError, r"\(N, C, H, W\)")],
    "companion.viz.plots:image_grid": [(lambda f: f(torch.zeros(8)), ValueError, r"\(N, C, H, W\)")],
    "companion.viz.plots:plot_history": [(lambda f: f(History(train={"loss": [1.0]}), terms=["kl"]), KeyError, "no term"),
                                         (lambda f: f("history"), TypeError, "History")],
    "companion.viz.plots:scatter_codes": [(lambda f: f(torch.zeros(5, 3)), ValueError, r"\(N, 2\)")],
    "companion.viz.plots:decoded_grid": [(lambda f: f(lambda z: z, (0, 1), (0, 1), n=0), ValueError, "n must be"),
                                         (lambda f: f("decode", (0, 1), (0, 1)), TypeError, "function codes → images")],
    "companion.viz.plots:plot_filters": [(lambda f: f(torch.zeros(4, 10), (1, 28, 28)), ValueError, "expected weights")],
    "companion.viz.quote:quote": [(lambda f: f(), ValueError, "at least one"),
                                  (lambda f: f(**{"not a name": 1}), ValueError, "identifiers")],
    "companion.viz.source:source": [(lambda f: f(3), TypeError, "cannot show the source")],
    "companion.viz.source:show_source": [(lambda f: f(3), TypeError, "cannot show the source")],
    "companion.viz.widgets:to_png": [(lambda f: f(torch.zeros(2, 2, 5, 5)), ValueError, "expected an image"),
                                     (lambda f: f(torch.zeros(5, 5), scale=0), ValueError, "scale")],
    "companion.viz.widgets:render_frame": [(lambda f: f("picture"), TypeError, "image or a figure")],
    "companion.viz.widgets:png_size": [(lambda f: f(b"GIF89a"), ValueError, "not a PNG")],
    "companion.viz.browser:export_decoder": [
        (lambda f: f(torch.nn.Linear(2, 784)), TypeError, "a model with a decoder"),
        (lambda f: f(VQ()), ValueError, "only an MLP decoder runs in the browser"),
        (lambda f: f(AE(), check=torch.zeros(3, 5)), ValueError, r"\(N, 2\)"),
        (lambda f: f(AE(), check=torch.full((1, 2), NAN)), ValueError, "finite")],
    "companion.viz.browser:decode_exported": [
        (lambda f: f({"codes": []}, torch.zeros(1, 2)), TypeError, "what export_decoder returns"),
        (lambda f: f(M("companion.viz.browser:export_decoder")(AE()), torch.zeros(1, 3)), ValueError,
         r"\(B, 2\)")],
    "companion.viz.browser:browser_explorer": [
        (lambda f: f(AE(), kind="grid"), ValueError, "kind must be one of"),
        (lambda f: f(AE(), starts=torch.zeros(1, 2)), ValueError, "starts belongs to kind='traversal'"),
        (lambda f: f(M("companion.models:VAE")(latent_size=3, hidden=(8,))), ValueError, "needs a 2-D code"),
        (lambda f: f(AE(), codes=torch.zeros(4, 3)), ValueError, r"codes \(N, 2\)"),
        (lambda f: f(AE(), codes=torch.zeros(4, 2), labels=[1, 2]), ValueError, "one per code"),
        (lambda f: f(AE(), codes=torch.zeros(2, 2), labels=["a", "b"]), ValueError, "integers 0–9"),
        (lambda f: f(AE(), codes=torch.zeros(2, 2), labels=[True, False]), ValueError, "integers 0–9"),
        (lambda f: f(AE(), codes=torch.zeros(2, 2), labels=[3, 12]), ValueError, "integers 0–9"),
        (lambda f: f(AE(), codes=np.zeros((2, 2))), TypeError, "torch.Tensor of codes"),
        (lambda f: f(AE(), "traversal", dims=[0.7]), ValueError, "distinct int coordinates"),
        (lambda f: f(AE(), "traversal", dims="01"), ValueError, "a list of coordinates"),
        (lambda f: f(AE(), "traversal", names="ab"), ValueError, "a list of 2 strings"),
        (lambda f: f(AE(), "traversal", images=torch.full((1, 1, 28, 28), 255, dtype=torch.uint8)), ValueError,
         r"\[0, 1\]"),
        (lambda f: f(AE().half()), ValueError, "float32 or float64"),
        (lambda f: f(AE(), scale=100), ValueError, "at most 16"),
        (lambda f: f(AE(), ends=[(0, 0)]), ValueError, "two 2-D codes"),
        (lambda f: f(AE(), x_range=(1, 0)), ValueError, "low < high"),
        (lambda f: f(AE(), ends=([0, 0], [5, 5]), x_range=(-1, 1)), ValueError, "leaves out an end"),
        (lambda f: f(AE(), "traversal", dims=[0, 5]), ValueError, "distinct int coordinates in 0…1"),
        (lambda f: f(AE(), "traversal", names=["a"]), ValueError, "2 strings"),
        (lambda f: f(M("companion.models:Autoencoder")(code_size=2, hidden=(1000, 1000))), ValueError,
         "more than 600,000"),
        (lambda f: f(AE(), "traversal", starts=torch.zeros(1, 2), images=torch.zeros(2, 1, 28, 28)), ValueError,
         r"start codes' images \(1, 1, 28, 28\)"),
        (lambda f: f(AE(), description=3), TypeError, "description must be a string"),
        (lambda f: f(AE(), scale=0), ValueError, "scale")],
    "companion.viz.widgets:static_interact": [(lambda f: f(lambda a: a), ValueError, "axes"),
                                              (lambda f: f(lambda a: a, a=[1]), ValueError, "at least 2 values"),
                                              (lambda f: f("f", a=[1, 2]), TypeError, "callable")],
    "companion.viz.widgets:latent_map": [(lambda f: f(lambda z: z, steps=1), ValueError, "steps"),
                                         (lambda f: f(lambda z: z, x_range=(1, 0)), ValueError, "low < high")],
    # --- exercises and experiments
    "companion.exercises.core:check": [(lambda f: f("ae.nope", lambda x: x), ValueError, "unknown exercise"),
                                       (lambda f: f("ae.mse", lambda a, b: a, time_limit=0), ValueError, "time_limit"),
                                       (lambda f: f("ae.mse", 3), TypeError, "function")],
    "companion.exercises.core:register": [(lambda f: f(M("companion.exercises.core:REGISTRY")["ae.mse"]), ValueError,
                                           "registered twice"),
                                          (lambda f: f("ae.mse"), TypeError, "Exercise")],
    "companion.exercises.core:seeded": [(lambda f: f(-1), ValueError, "seed")],
    "companion.exercises.core:tensor_problem": [(lambda f: f(torch.zeros(2), "shape"), TypeError, "shape")],
    "companion.experiments.core:cached": [(lambda f: f(3), TypeError, "run function")],
    "companion.experiments.core:experiment_run": [(lambda f: f(3), TypeError, r"body\(b, r\)")],
    "companion.experiments.core:check_claims": [(lambda f: f({}, M("companion.experiments.core:Metrics")(), "nope"),
                                                 ValueError, "unknown claim"),
                                                (lambda f: f({}, {}), TypeError, "metrics_of")],
    "companion.experiments.core:claims": [(lambda f: f(*[M("companion.experiments.core:Claim")("a", "s", bool)] * 2),
                                           ValueError, "defined twice")],
    "companion.experiments.core:finish": [(lambda f: f("run"), TypeError, "Run")],
    "companion.experiments.core:format_table": [(lambda f: f({"metrics": {}}), ValueError, "record")],
    "companion.experiments.core:get": [(lambda f: f("nope"), ValueError, "unknown experiment")],
    "companion.experiments.core:published": [(lambda f: f(None), TypeError, "number or a range")],
    "companion.experiments.core:references_table": [(lambda f: f({"x": {"value": 1}}), ValueError, "source")],
    "companion.experiments.core:register": [(lambda f: f(SimpleNamespace(NAME="x", BUDGETS={})), ValueError,
                                             "budget")],
    "companion.experiments.core:reproduce": [(lambda f: f("nope"), ValueError, "unknown experiment"),
                                             (lambda f: f("autoencoder", "huge"), ValueError, "budget")],
    "companion.experiments.core:resolve": [(lambda f: f(M("companion.experiments:get")("vae"), "huge"), ValueError,
                                            "budget must be one of")],
    "companion.experiments.core:run_key": [(lambda f: f(M("companion.experiments:get")("vae"), "quick", -1),
                                            ValueError, "non-negative int")],
    "companion.experiments.core:start": [(lambda f: f(M("companion.experiments:get")("vae"), "quick", -1, None),
                                          ValueError, "non-negative int")],
    "companion.experiments.core:dashed": [(lambda f: f("256"), TypeError, "sequence of numbers")],
    "companion.experiments.core:listed": [(lambda f: f([1, None]), TypeError, "sequence of numbers")],
    "companion.experiments.core:references": [(lambda f: f("nope"), ValueError, "no references")],
    "companion.experiments.core:flat_name": [(lambda f: f("mig_{k}", {}), ValueError, "no such dimension")],
    "companion.experiments.core:name_of": [(lambda f: f(beta=None), TypeError, "string or a number")],
    "companion.experiments.core:metrics_of": [(lambda f: f({"metrics": {}}), ValueError, "values"),
                                              (lambda f: f({"values": [{"metric": "a"}]}), ValueError, "metric record")],
    "companion.experiments.core:run_device": [(lambda f: f("tpu"), ValueError, "unknown device")],
    "companion.models.base:image_decoder": [(lambda f: f("decode"), TypeError, "function codes → images")],
    "companion.train:steps_per_epoch": [(lambda f: f(0, 128), ValueError, "n must be"),
                                        (lambda f: f(10, 1.5), ValueError, "batch_size")],
    "companion.experiments.core:write_json": [(lambda f: f({"a": 1}, "/"), ValueError, "a file path"),
                                              (lambda f: f("record", "/tmp/x.json"), TypeError, "dict")],
    # --- issue 39: what a new user tried, outside the first table
    "companion.models.base:check_codes": [(lambda f: f(AE(), np.zeros((1, 2)), 2), TypeError, "torch.Tensor")],
    "companion.models.base:check_grid": [(lambda f: f(VQ(), torch.zeros(1, 3, 3, dtype=torch.long), (7, 7), 8),
                                          ValueError, "grids of 7×7")],
    "companion.models.base:plain_fields": [(lambda f: f(3), TypeError, "config dataclass")],
    "companion.models.base:check_target_span": [(lambda f: f(AE(), X() * 255), ValueError, "divide 0…255")],
    "companion.viz.plots:image_array": [(lambda f: f(np.array(["a"])), TypeError, "numbers"),
                                        (lambda f: f(torch.full((1, 1, 2, 2), NAN)), ValueError, "NaN")],
}

#: issue 39: each case from the report that gave a raw error, passed silently or was refused
#: wrongly, as (call, exception, words); the model-level ones call the class.
ISSUE_39 = [
    # an int where a tuple is meant: refused with the shape expected
    (lambda: M("companion.models:Autoencoder")(image_shape=784), TypeError, "tuple of ints"),
    (lambda: M("companion.models:PixelSNAIL")(8, 4), TypeError, "tuple of ints"),
    (lambda: M("companion.models:PixelCNN")(8, channels=8, layers=2).sample(2, 3), TypeError, "grid_shape"),
    (lambda: M("companion.viz.plots:plot_filters")(torch.zeros(4, 784), 28), TypeError, "image_shape"),
    # NumPy arrays and wrong dtypes where tensors are expected
    (lambda: AE().decode(np.zeros((1, 2), dtype=np.float32)), TypeError, "torch.Tensor"),
    (lambda: VQ().decode(np.zeros((1, 7, 7), dtype=np.int64)), TypeError, "torch.Tensor"),
    (lambda: M("companion.models:PixelCNN")(8, channels=8, layers=2)(np.zeros((1, 4, 4), dtype=np.int64)),
     TypeError, "torch.Tensor"),
    (lambda: M("companion.models:PCA")(2).fit(np.zeros((10, 4), dtype=np.float32)), TypeError, "torch.Tensor"),
    (lambda: M("companion.metrics:reconstruction_error")(AE(), np.zeros((2, 1, 28, 28))), TypeError, "torch.Tensor"),
    (lambda: M("companion.viz.plots:plot_filters")(np.zeros((4, 784)), (1, 28, 28)), TypeError, "weight tensor"),
    (lambda: AE().decode(torch.zeros(1, 2, dtype=torch.float64)), TypeError, "float32"),
    # counts that are not whole or not positive
    (lambda: M("companion.models:PixelCNN")(8, channels=8, layers=2).sample(2.0, (3, 3)), ValueError, "n must"),
    (lambda: M("companion.models:PixelCNN")(8, channels=8, layers=2).sample(0, (3, 3)), ValueError, "n must"),
    (lambda: M("companion.metrics:importance_weighted_log_likelihood")(VAE(), X(), k=4, chunk=2.5), ValueError,
     "chunk"),
    (lambda: M("companion.viz.widgets:latent_map")(AE().decode, steps=2.5), ValueError, "steps"),
    (lambda: M("companion.viz.widgets:latent_map")(AE().decode, scale=2.5), ValueError, "scale"),
    (lambda: M("companion.viz.plots:image_grid")(X(), nrow=-1), ValueError, "nrow"),
    # empty inputs
    (lambda: M("companion.losses:mse")(torch.zeros(0, 3), torch.zeros(0, 3)), ValueError, "empty batch"),
    (lambda: M("companion.viz.plots:image_grid")(torch.zeros(0, 1, 8, 8)), ValueError, "no images"),
    # fit: data the model cannot take, a forward without an Output, callbacks of the wrong shape
    (lambda: M("companion.train:fit")(VQ(), M("companion.data:Split")(X(), torch.arange(4)), epochs=1,
                                      progress=False), TypeError, "Split"),
    (lambda: M("companion.train:fit")(_TensorModel(), X(), epochs=1, progress=False), TypeError, "Output"),
    (lambda: M("companion.train:fit")(AE(), X(), epochs=1, progress=False, on_epoch_end=lambda e: None), TypeError,
     "two arguments"),
    (lambda: M("companion.train:fit")(AE(), X(), epochs=1, progress=False, on_epoch_end=lambda e, m: 1.0),
     TypeError, "dict of names"),
    (lambda: M("companion.train:fit")(AE(), X(), epochs=1, progress=False, on_epoch_end=lambda e, m: {"a": "b"}),
     TypeError, "dict of names"),
    (lambda: M("companion.train:fit")(AE(), X(), epochs=1, progress=False, seed=-1), ValueError, "seed"),
    # NaN that passed through
    (lambda: AE().decode(torch.tensor([[NAN, 0.0]])), ValueError, "NaN"),
    (lambda: M("companion.models:PCA")(2).fit(X(10)).encode(torch.full((1, 1, 28, 28), NAN)), ValueError, "NaN"),
    (lambda: M("companion.losses:kl_normal_std_normal")(torch.tensor([[NAN]]), torch.zeros(1, 1)), ValueError, "NaN"),
    (lambda: M("companion.losses:kl_decomposition")(torch.tensor([[NAN], [0.0]]), torch.zeros(2, 1),
                                                     torch.zeros(2, 1), 10), ValueError, "NaN"),
    (lambda: M("companion.metrics:reconstruction_error")(AE(), X(), target=torch.full((4, 1, 28, 28), NAN)),
     ValueError, "NaN"),
    (lambda: M("companion.viz.widgets:to_png")(torch.full((1, 4, 4), NAN)), ValueError, "NaN"),
    (lambda: M("companion.metrics:linear_probe_r2")(torch.rand(10, 2), torch.rand(10), torch.rand(5, 2),
                                                    torch.full((5,), NAN)), ValueError, "NaN"),
    (lambda: M("companion.metrics:linear_probe_r2")(torch.rand(10, 2), torch.rand(10), torch.rand(5, 2),
                                                    torch.ones(5)), ValueError, "constant"),
    # images 0…255 into Gaussian-likelihood models; code grids of another size
    (lambda: AE()(X() * 255), ValueError, "divide 0…255"),
    (lambda: M("companion.models:VAE")(likelihood="gaussian", latent_size=2, hidden=(8,))(X() * 255), ValueError,
     "divide 0…255"),
    (lambda: M("companion.models:DenoisingAutoencoder")(code_size=2, hidden=(8,))(X() * 255), ValueError,
     "divide 0…255"),
    (lambda: M("companion.models:VQVAE")(num_codes=8, code_dim=4, channels=(4, 8), likelihood="gaussian")(X() * 255),
     ValueError, "divide 0…255"),
    (lambda: VQ().decode(torch.zeros(1, 3, 3, dtype=torch.long)), ValueError, "7×7"),
    (lambda: VQ2().decode(torch.zeros(1, 2, 2, dtype=torch.long)), ValueError, "4×4"),
    # drawing
    (lambda: M("companion.viz.plots:scatter_codes")(torch.zeros(3, 2), torch.tensor([0, 1, 25])), ValueError,
     "20 classes"),
    (lambda: M("companion.viz.widgets:static_interact")(lambda a: torch.zeros(1, 4, 4), a="ab", mode="static"),
     TypeError, "list of values"),
    # claims and the CLI's device
    (lambda: M("companion.experiments.core:check_claims")(M("companion.experiments:get")("vae").CLAIMS,
                                                          M("companion.experiments.core:Metrics")()),
     ValueError, "lack"),
    (lambda: M("companion.experiments.core:run_device")("meta"), ValueError, "meta"),
]


class _TensorModel(torch.nn.Module):
    """A custom model whose forward returns a bare loss tensor."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return (self.w * x).mean()


@pytest.mark.parametrize("i", range(len(ISSUE_39)))
def test_issue_39_cases_get_a_clear_error(i, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    call, error, words = ISSUE_39[i]
    with pytest.raises(error, match=words):
        call()


def test_issue_39_legitimate_calls_work(tmp_path):
    """Python, NumPy and 0-d tensor scalars alike; an int for a one-layer size; case-insensitive
    device names; bfloat16 and uint8 images; NumPy labels; fit under no_grad; NaN in a record."""
    from companion import get_device
    from companion.data import load
    from companion.data.corrupt import masking_noise
    from companion.data.sequences import moving_digits
    from companion.experiments.core import format_table, metrics_of, write_json
    from companion.losses import reconstruction
    from companion.metrics import active_units
    from companion.models import PCA, TDVAE, Autoencoder, VAE as VAE_
    from companion.train import fit
    from companion.viz.plots import image_grid, scatter_codes
    from companion.viz.widgets import to_png

    assert Autoencoder(code_size=np.int64(4)).config.code_size == 4
    assert type(Autoencoder(code_size=np.int64(4)).config.code_size) is int
    assert Autoencoder(code_size=2, hidden=256).config.hidden == (256,)
    assert TDVAE(frame_shape=784, belief_size=8, z_size=2, hidden=8).config.frame_shape == (784,)
    assert PCA(np.int64(2)).config.code_size == 2 and VAE_(beta=np.float32(4)).config.beta == 4.0
    assert PCA(torch.tensor(2)).config.code_size == 2
    fit(AE(), X(), epochs=np.int64(1), batch_size=np.int64(2), lr=np.float32(1e-3), progress=False)
    with torch.no_grad():
        assert fit(AE(), X(), epochs=1, progress=False).epochs == 1
    assert masking_noise(X(), torch.tensor(0.3)).shape == X().shape
    assert len(load("digits", "train", seed=np.int64(1)).x) > 0
    assert active_units(VAE(), X(), threshold=np.float32(0.1)) >= 0
    assert reconstruction(X(), X(), "gaussian", std=np.float32(0.1)).shape == (4,)
    assert get_device("CPU") == torch.device("cpu") and get_device(" Cpu ") == torch.device("cpu")
    from companion.metrics import corruption_curve
    from companion.models import DenoisingAutoencoder
    dae = DenoisingAutoencoder(code_size=2, hidden=(8,), noise="gaussian", noise_level=1.5)
    fit(dae, X(), epochs=1, progress=False)                       # strongly corrupted inputs train
    assert len(corruption_curve({"dae": dae}, X(), [0.0, 1.5], kind="gaussian")["dae"]) == 2
    image_grid(X().bfloat16())
    image_grid((X() * 255).to(torch.uint8))
    assert to_png(X()[0].bfloat16())[:4] == b"\x89PNG"
    scatter_codes(torch.zeros(3, 2), torch.tensor([0, 12, 19]))
    seqs = moving_digits(X(), labels=np.arange(4), length=3, n=2, seed=0)
    assert seqs.labels.dtype == torch.int64
    record = {"experiment": "x", "budget": "quick", "seconds": 1.0, "reference": {},
              "metrics": {"a": float("nan"), "b": 1.0},
              "values": [{"metric": "a", "dims": {}, "value": float("nan")}, {"metric": "b", "dims": {}, "value": 1.0}]}
    path = write_json(record, tmp_path / "r.json")
    import json
    loaded = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert loaded["metrics"]["a"] is None and math.isnan(metrics_of(loaded)["a"])
    assert "—" in format_table(loaded)



def test_every_public_function_has_rows():
    """A new public function joins the table (or NO_INPUT, with a reason)."""
    missing = sorted(public_functions() - set(TABLE) - NO_INPUT)
    stale = sorted(set(TABLE) - public_functions())
    assert not missing, f"public functions without bad-input rows: {missing}"
    assert not stale, f"rows for functions that are gone: {stale}"


ROWS = [(name, i, *row) for name, rows in TABLE.items() for i, row in enumerate(rows)]


@pytest.mark.parametrize("name, i, call, error, words", ROWS, ids=[f"{r[0].split(':')[1]}-{r[1]}" for r in ROWS])
def test_bad_input_gets_a_clear_error(name, i, call, error, words, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPANION_RUN_CACHE", raising=False)
    with pytest.raises(error, match=words):
        call(M(name))
