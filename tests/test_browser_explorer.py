"""The explorers that decode in the browser (companion.viz.browser), on the Python side.

The exported weights must reproduce each kind of MLP decoder within BOUND in every pixel,
against the model's own ``decode_mean``. Models the page's script cannot run are refused with
a clear message. Exporting changes nothing in the model. The HTML output is self-contained.
The browser's own decode is checked in tests/site/test_decoding_in_chromium.py.
"""
import base64
import json
import re
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from companion.models import VAE, Autoencoder, VQVAE
from companion.viz.browser import BOUND, QMAX, browser_explorer, decode_exported, export_decoder


def trained_like(model, seed=0):
    """Uneven weights, as training leaves them: a few large ones in each row among small ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02 * (torch.rand(p.shape, generator=g) < 0.05))
    return model


MODELS = {
    "autoencoder, Bernoulli": lambda: Autoencoder(code_size=2, hidden=(512, 128), likelihood="bernoulli"),
    "autoencoder, Gaussian, sigmoid output": lambda: Autoencoder(code_size=2, hidden=(64,), likelihood="gaussian",
                                                                 out_act="sigmoid"),
    "autoencoder, Gaussian, no output activation": lambda: Autoencoder(code_size=3, hidden=(64,), likelihood="gaussian"),
    "autoencoder, tanh": lambda: Autoencoder(code_size=2, hidden=(64, 32), act="tanh"),
    "autoencoder, ELU": lambda: Autoencoder(code_size=2, hidden=(64,), act="elu"),
    "VAE, Bernoulli": lambda: VAE(latent_size=2, hidden=(400,)),
    "VAE, Gaussian, 32×32": lambda: VAE(latent_size=10, hidden=(256, 128), image_shape=(1, 32, 32), likelihood="gaussian"),
}


@pytest.mark.parametrize("name", MODELS)
def test_the_exported_decoder_reproduces_the_model(name):
    model = trained_like(MODELS[name]().eval())
    payload = export_decoder(model)
    m = payload["codeSize"]
    z = torch.randn(500, m, generator=torch.Generator().manual_seed(1)) * 2
    with torch.no_grad():
        expected = model.decode_mean(z).double()
    got = decode_exported(payload, z)
    assert got.shape == expected.shape
    error = (got - expected).abs().max().item()
    print(f"{name}: largest pixel difference {error:.1e}")
    assert error <= BOUND
    assert error > 0                                     # 16-bit weights are not the model's float32 ones
    assert payload["maxError"] <= BOUND


def test_each_weight_is_within_half_a_step_of_its_row_scale():
    model = trained_like(Autoencoder(code_size=2, hidden=(64,), likelihood="bernoulli"))
    payload = export_decoder(model)
    linears = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    assert [(lay["rows"], lay["cols"]) for lay in payload["layers"]] == [(l.out_features, l.in_features) for l in linears]
    for layer, linear in zip(payload["layers"], linears):
        planes = np.frombuffer(zlib.decompress(base64.b64decode(layer["q"])), np.uint8).reshape(2, -1)
        q = (planes[0].astype(np.int32) | (planes[1].astype(np.int32) << 8)).astype(np.uint16).view(np.int16)
        q = q.reshape(layer["rows"], layer["cols"])
        s = np.frombuffer(base64.b64decode(layer["scale"]), "<f4")
        w = linear.weight.detach().double().numpy()
        assert np.allclose(s, np.abs(w).max(1) / QMAX, rtol=1e-6)                  # s_r = max_c |W_rc| / 32767
        assert (np.abs(q).max(1) == QMAX).all()                                      # every row uses the full range
        assert np.all(np.abs(q * s[:, None].astype(np.float64) - w) <= s[:, None] / 2 * (1 + 1e-4))
        b = np.frombuffer(base64.b64decode(layer["bias"]), "<f4")
        assert np.array_equal(b, linear.bias.detach().numpy())                    # biases stay float32
    assert [lay["act"] for lay in payload["layers"]] == ["relu", "identity"]
    assert payload["out"] == "sigmoid" and payload["imageShape"] == [1, 28, 28]


def test_exporting_changes_nothing_in_the_model_or_the_random_state():
    model = trained_like(VAE(latent_size=2, hidden=(32,)))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    codes = torch.randn(50, 2)
    rng = torch.get_rng_state()
    browser_explorer(model, codes=codes, labels=torch.arange(50) % 10, ends=([0, 0], [1, 1]))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())


class Halved(Autoencoder):
    def decode_mean(self, z):
        return super().decode_mean(z) / 2


def test_models_the_browser_cannot_run_are_refused_with_what_to_use():
    with pytest.raises(ValueError, match="only an MLP decoder.*static_interact"):
        export_decoder(Autoencoder(code_size=2, architecture="conv", hidden=(4, 8)))
    with pytest.raises(ValueError, match="only an MLP decoder"):
        browser_explorer(VQVAE(num_codes=8, code_dim=4, channels=(4, 8)))
    with pytest.raises(TypeError, match="a model with a decoder"):
        browser_explorer(nn.Sequential(nn.Linear(2, 784)))
    with pytest.raises(ValueError, match="no browser version"):
        export_decoder(Autoencoder(code_size=2, hidden=(16,), act="gelu"))
    with pytest.raises(ValueError, match="neither its decoder's output nor the sigmoid"):
        export_decoder(Halved(code_size=2, hidden=(16,)))
    with torch.device("meta"):
        on_meta = Autoencoder(code_size=2, hidden=(16,))
    with pytest.raises(ValueError, match="meta device"):
        export_decoder(on_meta)


def test_a_decoder_too_uneven_for_16_bit_integers_is_refused():
    model = Autoencoder(code_size=2, hidden=(64,))
    with torch.no_grad():
        first = model.decoder[0][1]
        first.weight[:, 0] = 1e6                         # one huge weight per row: the others round to 0
    with pytest.raises(ValueError, match="more than 0.001"):
        export_decoder(model)


def _data(explorer):
    match = re.search(r'<script type="application/json" class="cbe-data">(.*?)</script>', explorer.html, re.S)
    return json.loads(match[1])


def test_the_output_is_one_self_contained_piece_of_html():
    model = trained_like(Autoencoder(code_size=2, hidden=(64,)))
    codes = torch.randn(300, 2)
    explorer = browser_explorer(model, codes=codes, labels=torch.arange(300) % 10, description="a </script> test")
    html = explorer.html
    assert explorer._repr_html_() == html
    assert len(re.findall(r"<script", html)) == 2 and html.count("</script>") == 2      # the data and the code
    assert not re.search(r"\b(src|href)=|https?://|import\(|fetch\(", html)            # nothing is fetched
    assert "cbe-fallback" in html                                                        # seen where scripts cannot run
    data = _data(explorer)
    assert data["caption"] == "a </script> test" and data["kind"] == "map"
    points = np.frombuffer(base64.b64decode(data["points"]), "<f4").reshape(-1, 2)
    assert np.array_equal(points, codes.numpy())
    low, high = np.quantile(codes.numpy(), [0.01, 0.99], axis=0)
    assert data["xRange"][0] < low[0] and data["xRange"][1] > high[0]                # the codes' range and a margin
    assert explorer.weight_bytes == sum(len(lay[k]) for lay in data["layers"] for k in ("q", "scale", "bias"))
    assert explorer.weight_bytes < explorer.page_bytes < explorer.weight_bytes + 40_000
    assert "MB in the page" in repr(explorer)
    far = _data(browser_explorer(model, codes=codes, ends=([0.0, 0.0], [9.0, -7.0])))
    assert far["xRange"][1] >= 9 and far["yRange"][0] <= -7                        # the default extent shows both ends


def test_a_traversal_carries_its_starts_coordinates_names_and_images():
    model = trained_like(VAE(latent_size=5, hidden=(32,), image_shape=(1, 32, 32)))
    starts, images = torch.randn(3, 5), torch.rand(3, 1, 32, 32)
    explorer = browser_explorer(model, "traversal", starts=starts, images=images, dims=[4, 1],
                                names=["z4 · pos_x", "z1 · pos_y"], span=(-2, 2))
    data = _data(explorer)
    assert data["dims"] == [4, 1] and data["names"] == ["z4 · pos_x", "z1 · pos_y"] and data["span"] == [-2, 2]
    assert torch.allclose(torch.tensor(data["starts"]), starts)
    first = np.frombuffer(base64.b64decode(data["images"][0]), "<u1")
    assert np.array_equal(first, (images[0].flatten() * 255).round().to(torch.uint8).numpy())
    assert data["scale"] == 5                                     # about 170 pixels wide for 32 × 32
    wide = _data(browser_explorer(model, "traversal", starts=torch.tensor([[0.0, 4.0, 0.0, 0.0, -5.0]]), span=(-2, 2)))
    assert wide["span"] == [-5, 4]                                 # every slider can show its start's value
    default = _data(browser_explorer(model, "traversal"))
    assert default["starts"] == [[0.0] * 5] and default["names"] == [f"z{j}" for j in range(5)]
