"""Diagrams drawn from the code: a change of config changes the figure."""
import importlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from companion.models import (VAE, VQVAE, VQVAE2, Autoencoder, AutoencoderConfig, DenoisingAutoencoder,  # noqa: E402
                              DenoisingAutoencoderConfig, TDVAE, TDVAEConfig, VAEConfig, VQVAE2Config, VQVAEConfig)
from companion.viz import diagrams  # noqa: E402


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_trace_layers_reports_the_shapes_the_model_produces():
    model = VQVAE(VQVAEConfig(channels=(4, 8), code_dim=3))
    model.train()
    layers = diagrams.trace_layers(model.encoder, torch.zeros(2, 1, 28, 28))
    assert [l.shape for l in layers] == [(4, 14, 14), (8, 7, 7), (3, 7, 7)]
    assert layers[0].kind == "Conv 4×4 /2" and layers[-1].kind == "Conv 1×1"
    assert model.training, "tracing must restore training mode"
    assert model.encoder(torch.zeros(2, 1, 28, 28)).shape[1:] == layers[-1].shape


def test_autoencoder_diagram_follows_its_config():
    small = texts(diagrams.architecture(Autoencoder(AutoencoderConfig(code_size=2, hidden=(256,)))))
    deep = texts(diagrams.architecture(Autoencoder(AutoencoderConfig(code_size=30, hidden=(512, 128)))))
    assert small != deep
    assert "512" in deep and "512" not in small and "256" in small
    assert "Linear, 2" in small and "Linear, 30" in deep
    assert sum(t == "Linear" for t in deep) == 4 and sum(t == "Linear" for t in small) == 2   # hidden layers
    conv = texts(diagrams.architecture(Autoencoder(AutoencoderConfig(code_size=8, hidden=(16, 32), architecture="conv"))))
    assert "16×14×14" in conv and "32×7×7" in conv


def test_denoising_diagram_shows_its_corruption():
    t = texts(diagrams.architecture(DenoisingAutoencoder(DenoisingAutoencoderConfig(noise="gaussian", noise_level=0.5))))
    assert "corrupt: gaussian" in t and "level 0.5" in t and "x̃" in t


def test_vae_diagram_follows_its_config():
    a = texts(diagrams.architecture(VAE(VAEConfig(latent_size=16, hidden=(512, 256)))))
    b = texts(diagrams.architecture(VAE(VAEConfig(latent_size=4, hidden=(400,)))))
    assert "Linear, 2×16" in a and "Linear, 2×4" in b
    assert "256" in a and "256" not in b
    assert any("ε" in t for t in a)


def test_vq_diagrams_follow_their_configs():
    a = " ".join(texts(diagrams.architecture(VQVAE(VQVAEConfig(num_codes=64, channels=(32, 64))))))
    b = " ".join(texts(diagrams.architecture(VQVAE(VQVAEConfig(num_codes=128, channels=(8, 16, 32),
                                                               image_shape=(1, 32, 32))))))
    assert "K = 64" in a and "7×7 indices" in a
    assert "K = 128" in b and "4×4 indices" in b
    two = " ".join(texts(diagrams.architecture(VQVAE2(VQVAE2Config(image_shape=(1, 32, 32), num_codes_top=32,
                                                                   num_codes_bottom=16)))))
    assert "K = 32" in two and "K = 16" in two and "4×4 codes" in two and "8×8 codes" in two


def test_graphical_models_render_and_follow_the_tdvae():
    assert diagrams.vae_graphical_model() is not None
    ax = diagrams.state_space_model(5)
    assert {r"$\mathbf{z}_5$", r"$\mathbf{x}_5$"} <= set(texts(ax))
    t = " ".join(texts(diagrams.tdvae_training_graph(TDVAE(TDVAEConfig(belief_size=48, z_size=6)))))
    assert "48" in t and "6" in t and r"$p_\mathrm{T}$" in t and r"$p_\mathrm{S}$" in t and r"$\mathbf{h}_{t_1}$" in t


def test_reparameterisation_figure_draws_what_autograd_says():
    assert diagrams.gradient_reaches_parameters(True) is True
    assert diagrams.gradient_reaches_parameters(False) is False
    left, right = diagrams.reparameterisation_graph()
    assert any("no gradient reaches φ" in t for t in texts(left))
    assert any("flows back" in t for t in texts(right))


def test_vqvae2_procedure_names_functions_that_exist():
    from companion.experiments.ch09_vq_vae2 import procedure

    steps = procedure()
    assert [s for s, _, _ in steps] == ["train"] * 4 + ["sample"] * 3
    for _, _, names in steps:
        for ref in names.replace("(", " ").replace(")", " ").replace(",", " ").split():
            if not ref.startswith("companion."):
                continue
            parts = ref.split(".")
            for i in range(len(parts), 0, -1):          # the longest importable module prefix
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                    break
                except ModuleNotFoundError:
                    continue
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            assert callable(obj), ref
    md = diagrams.procedure_markdown(steps)
    assert md.count("\n1. ") + md.startswith("1. ") <= 1 and "7. " in md
