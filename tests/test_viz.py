import matplotlib
import numpy as np
import pytest
import torch

from companion.train import History
from companion.viz import decoded_grid, image_grid, plot_history, scatter_codes, show_source, source
from companion.viz.plots import tile
from companion.viz.widgets import latent_map, to_png


def test_tile_layout():
    imgs = torch.zeros(5, 1, 3, 3)
    imgs[4] = 1
    t = tile(imgs, nrow=3, pad=1)
    assert t.shape == (2 * 4 + 1, 3 * 4 + 1)
    assert t[5:8, 5:8].min() == 1.0 and t[1:4, 1:4].max() == 0.0


def test_plots_draw():
    ax = image_grid(torch.rand(6, 1, 8, 8), nrow=3, title="x")
    assert ax.get_title() == "x"
    h = History(train={"loss": [3, 2, 1], "recon": [3, 2, 1]}, val={"loss": [4, 3, 2], "recon": [4, 3, 2]})
    ax = h.plot()
    assert len(ax.lines) == 2  # recon train + held out
    ax = scatter_codes(torch.randn(20, 2), torch.arange(20) % 10)
    assert ax.collections
    with pytest.raises(ValueError):
        scatter_codes(torch.randn(5, 3))
    with pytest.raises(KeyError):
        plot_history(h, terms=["kl"])
    with pytest.raises(ValueError):
        image_grid(torch.rand(2, 5, 4, 4))


def test_decoded_grid_orientation():
    # decode to an image whose brightness is z1 (columns) and z2 (rows, top = high)
    dec = lambda z: torch.sigmoid(z[:, :1, None, None] + 0 * z[:, 1:, None, None]).expand(-1, 1, 2, 2)
    g = decoded_grid(dec, (-3, 3), (-1, 1), n=4)
    assert g.shape == (16, 1, 2, 2)
    assert g[3].mean() > g[0].mean()  # right of the first row is brighter


def test_to_png():
    png = to_png(torch.rand(1, 28, 28), scale=2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(png)).size == (56, 56)
    with pytest.raises(ValueError):
        to_png(torch.rand(2, 4, 4, 4))


def test_latent_map_live_sliders_redraw():
    dec = lambda z: torch.sigmoid(z[:, :1, None, None] * torch.linspace(-1, 1, 16).view(1, 1, 4, 4)
                                  + z[:, 1:, None, None]).reshape(-1, 1, 4, 4)
    w = latent_map(dec, (-2, 2), (-2, 2), steps=5)
    first = w.image.value
    w.sliders[0].value = 2.0
    second = w.image.value
    assert second != first
    w.sliders[1].value = -2.0
    assert w.image.value != second
    assert w.sliders[0].step == pytest.approx(1.0)
    with pytest.raises(ValueError):
        latent_map(dec, (1, -1), (0, 1))


def test_source_helpers():
    assert source(tile).startswith("def tile(")
    md = show_source(tile)
    assert "```python" in md.data and "def tile" in md.data
    with pytest.raises(TypeError):
        source(3)
