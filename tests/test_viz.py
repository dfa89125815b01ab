import matplotlib
import numpy as np
import pytest
import torch

from companion.train import History
from companion.viz import decoded_grid, image_grid, plot_history, scatter_codes, show_source, source
from companion.viz.plots import tile
from companion.viz.widgets import default_mode, latent_map, static_interact, to_png


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


def test_plot_filters():
    from companion.viz import plot_filters

    ax = plot_filters(torch.randn(10, 16), (4, 4), n=6, nrow=3, title="w")
    assert ax.get_title() == "w" and ax.images[0].get_array().shape == (2 * 5 + 1, 3 * 5 + 1)
    with pytest.raises(ValueError):
        plot_filters(torch.randn(10, 15), (4, 4))


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


def _dec(z):
    """A toy decoder whose 4×4 image depends on both code coordinates."""
    ramp = torch.linspace(-1, 1, 16).view(1, 16)
    return torch.sigmoid(3 * z[:, :1] * ramp + 3 * z[:, 1:] * ramp.flip(1)).reshape(-1, 1, 4, 4)


def test_latent_map_live_sliders_redraw():
    w = latent_map(_dec, (-2, 2), (-2, 2), steps=5, mode="live")
    assert w.mode == "live" and [s.description for s in w.sliders] == ["z1", "z2"]
    first = w.image.value
    w.sliders[0].value = 4
    second = w.image.value
    assert second != first
    w.sliders[1].value = 0
    assert w.image.value != second
    assert w.sliders[0].label == "2"
    with pytest.raises(ValueError):
        latent_map(_dec, (1, -1), (0, 1))


def test_static_mode_precomputes_every_frame_and_links_sliders():
    import ipywidgets as widgets

    calls = []

    def f(a, b):
        calls.append((a, b))
        return _dec(torch.tensor([[a, b]], dtype=torch.float32))[0]

    w = static_interact(f, mode="static", a=[-1.0, 0.0, 1.0], b=[-2.0, 2.0])
    assert w.mode == "static" and len(w.frames) == 6 and len(calls) == 6
    assert calls == [(a, b) for a in (-1.0, 0.0, 1.0) for b in (-2.0, 2.0)]
    assert len({fr.value for fr in w.frames}) == 6          # every frame differs
    outer = w.children[-1]
    assert isinstance(outer, widgets.Stack) and len(outer.children) == 3
    assert all(isinstance(c, widgets.Stack) and len(c.children) == 2 for c in outer.children)
    # the selected frame follows the sliders' initial values
    assert outer.selected_index == w.sliders[0].index == 1
    targets = {(id(l.source[0]), id(l.target[0])) for l in w.links}
    assert len(w.links) == 1 + 3 and all(l.source[1] == "index" for l in w.links)
    assert (id(w.sliders[0]), id(outer)) in targets
    assert all((id(w.sliders[1]), id(c)) in targets for c in outer.children)


def test_static_interact_three_axes_and_figures():
    import matplotlib.pyplot as plt

    def fig(a, b, c):
        f, ax = plt.subplots(figsize=(1, 1))
        ax.plot([0, 1], [a, b + c])
        return f

    w = static_interact(fig, mode="static", a=[0, 1], b=[0, 1], c=[0, 1, 2])
    assert len(w.frames) == 12 and w.frames[0].value[:4] == b"\x89PNG"
    batch = static_interact(lambda k: torch.rand(3, 1, 4, 4), mode="live", k=[1, 2])
    assert batch.image.value[:4] == b"\x89PNG"


def test_static_interact_validates():
    with pytest.raises(ValueError, match="too many"):
        static_interact(lambda a, b: torch.zeros(4, 4), mode="static", a=range(6), b=range(5))
    with pytest.raises(ValueError, match="1 to 3 axes"):
        static_interact(lambda: 0, mode="static")
    with pytest.raises(ValueError, match="at least 2"):
        static_interact(lambda a: torch.zeros(4, 4), a=[1])
    with pytest.raises(ValueError, match="mode"):
        static_interact(lambda a: torch.zeros(4, 4), mode="dynamic", a=[1, 2])


def test_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("COMPANION_WIDGETS", "static")
    assert default_mode() == "static"
    assert latent_map(_dec, steps=2).mode == "static"
    monkeypatch.setenv("COMPANION_WIDGETS", "bogus")
    with pytest.raises(ValueError, match="COMPANION_WIDGETS"):
        default_mode()
    monkeypatch.delenv("COMPANION_WIDGETS")
    assert default_mode() == "live"


def test_source_helpers():
    assert source(tile).startswith("def tile(")
    md = show_source(tile)
    assert "```python" in md.data and "def tile" in md.data
    with pytest.raises(TypeError):
        source(3)
