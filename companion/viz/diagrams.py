r"""Diagrams drawn from the code: architectures traced from a model, graphical models, the
reparameterisation trick's gradient paths and VQ-VAE-2's procedure.

Nothing here is drawn by hand. :func:`architecture` runs a model's encoder and decoder on a
dummy batch with forward hooks and draws one bar per layer, sized and labelled by the shape
that layer really outputs, so a change of a model's config redraws its figure. The graphical
models (:func:`vae_graphical_model`, :func:`state_space_model`, :func:`tdvae_training_graph`)
are drawn with daft-pgm, the last labelled with the sizes of the TD-VAE it is given.
:func:`reparameterisation_graph` asks autograd whether a sample carries a gradient back to
φ, and draws the backward arrows it finds. :func:`procedure_markdown` writes the steps of VQ-VAE-2's training and sampling that
:func:`companion.experiments.ch09_vq_vae2.procedure` lists, taken from the function objects.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyBboxPatch, Rectangle
from torch import nn

COLORS = {"data": "#d9d9d9", "encoder": "#9ecae1", "code": "#fdae6b", "decoder": "#a1d99b",
          "op": "#ffffff", "codebook": "#bcbddc", "random": "#fdd0a2"}


class Layer(NamedTuple):
    """One parametrised layer met in a forward pass: its qualified name, a short description
    and the shape of its output for one example."""

    name: str
    kind: str
    shape: tuple[int, ...]


def describe_layer(m: nn.Module) -> str:
    """A short label: ``Linear``, ``Conv 4×4 /2``, ``ConvT 4×4 ×2``, ``LSTM`` …"""
    if not isinstance(m, nn.Module):
        raise TypeError(f"describe_layer expects an nn.Module, got {type(m).__name__}")
    if isinstance(m, nn.ConvTranspose2d):
        k, s = m.kernel_size[0], m.stride[0]
        return f"ConvT {k}×{k}" + (f" ×{s}" if s > 1 else "")
    if isinstance(m, nn.Conv2d):
        k, s = m.kernel_size[0], m.stride[0]
        return f"Conv {k}×{k}" + (f" /{s}" if s > 1 else "")
    return type(m).__name__


def _output_shapes(module: nn.Module, watched: list[nn.Module], *inputs) -> dict[nn.Module, tuple[int, ...]]:
    """Run ``module(*inputs)`` in eval mode without gradients; the per-example output shape of
    each watched submodule at its first call, in call order. Training mode is restored."""
    shapes: dict[nn.Module, tuple[int, ...]] = {}

    def hook(m, _inp, out):
        out = getattr(out, "z_q", out)                  # a quantizer's output: the quantised vectors
        out = out[0] if isinstance(out, tuple) else out
        shapes.setdefault(m, tuple(out.shape[1:]))

    handles = [m.register_forward_hook(hook) for m in watched]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def trace_layers(module: nn.Module, *inputs: torch.Tensor) -> list[Layer]:
    """Run ``module(*inputs)`` without gradients and record every leaf layer that has
    parameters (Linear, convolutions, LSTM …), in the order the pass meets them."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"trace_layers expects an nn.Module, got {type(module).__name__}")
    names = {m: n for n, m in module.named_modules()}
    leaves = [m for m in module.modules() if not list(m.children()) and any(True for _ in m.parameters(recurse=False))]
    return [Layer(names[m], describe_layer(m), shape) for m, shape in _output_shapes(module, leaves, *inputs).items()]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _numel(shape) -> int:
    return math.prod(shape)


def _ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.set_axis_off()
    return ax


def _chain(ax, items, biggest: int):
    """Draw bars left to right: items are (top label, bottom label, numel, role); a bar's
    height grows with the log of the number of values it holds. Returns the x positions."""
    xs = []
    for i, (top, bottom, n, role) in enumerate(items):
        h = 0.5 + 2.5 * math.log(n + 1) / math.log(biggest + 1)
        ax.add_patch(Rectangle((i - 0.2, -h / 2), 0.4, h, fc=COLORS[role], ec="k", lw=0.8))
        ax.text(i, h / 2 + 0.12, top, ha="center", va="bottom", fontsize=8)
        ax.text(i, -h / 2 - 0.12, bottom, ha="center", va="top", fontsize=8)
        if i:
            ax.annotate("", (i - 0.22, 0), (i - 0.78, 0), arrowprops=dict(arrowstyle="->", lw=0.8))
        xs.append(i)
    return xs


def _brace(ax, x0: float, x1: float, text: str, y: float = 2.1) -> None:
    ax.plot([x0 - 0.25, x0 - 0.25, x1 + 0.25, x1 + 0.25], [y - 0.1, y, y, y - 0.1], color="0.3", lw=0.8)
    ax.text((x0 + x1) / 2, y + 0.08, text, ha="center", va="bottom", fontsize=9)


def _layer_items(layers: list[Layer], role: str) -> list:
    return [(layer.kind, _shape_text(layer.shape), _numel(layer.shape), role) for layer in layers]


def _autoencoder_items(model) -> tuple[list, tuple[int, int], tuple[int, int], str]:
    """Bars of an :class:`~companion.models.Autoencoder` (or a subclass): x, the encoder's
    layers, the code z, the decoder's layers, x′."""
    cfg = model.config
    x = torch.zeros(2, *cfg.image_shape)
    enc = trace_layers(model.encoder, x)
    dec = trace_layers(model.decoder, torch.zeros(2, cfg.code_size))
    items = [("x", _shape_text(cfg.image_shape), _numel(cfg.image_shape), "data")]
    note = ""
    if hasattr(model, "corrupt"):                       # the denoising autoencoder: x → x̃ first
        items.append((f"corrupt: {cfg.noise}", f"level {cfg.noise_level:g}", _numel(cfg.image_shape), "op"))
        items.append(("x̃", _shape_text(cfg.image_shape), _numel(cfg.image_shape), "data"))
        note = "loss against the clean x"
    first = len(items)
    items += _layer_items(enc[:-1], "encoder")
    items.append((f"z = g_φ(x̃)" if note else "z = g_φ(x)", f"{enc[-1].kind}, {_shape_text(enc[-1].shape)}",
                  _numel(enc[-1].shape), "code"))
    code = len(items) - 1
    items += _layer_items(dec[:-1], "decoder")
    items.append(("x′ = f_θ(z)", f"{dec[-1].kind}, {_shape_text(dec[-1].shape)}", _numel(dec[-1].shape), "data"))
    return items, (first, code), (code + 1, len(items) - 1), note


def _vae_items(model) -> tuple[list, tuple[int, int], tuple[int, int], str]:
    """Bars of a :class:`~companion.models.VAE`: the encoder's last layer is split into μ and
    log σ², then z = μ + σ ⊙ ε with ε ∼ N(0, I), then the decoder."""
    cfg = model.config
    k = cfg.latent_size
    enc = trace_layers(model.encoder, torch.zeros(2, *cfg.image_shape))
    dec = trace_layers(model.decoder, torch.zeros(2, k))
    items = [("x", _shape_text(cfg.image_shape), _numel(cfg.image_shape), "data")]
    items += _layer_items(enc[:-1], "encoder")
    items += [("[μ, log σ²]", f"{enc[-1].kind}, 2×{k}", 2 * k, "encoder"),
              ("z = μ + σ⊙ε", str(k), k, "code")]
    code = len(items) - 1
    items += _layer_items(dec[:-1], "decoder")
    items.append(("x ∼ p_θ(x|z)", f"{_shape_text(dec[-1].shape)}, {cfg.likelihood}", _numel(dec[-1].shape), "data"))
    return items, (1, code - 1), (code + 1, len(items) - 1), "loss: −log p_θ(x|z) + KL(q_φ(z|x) ‖ N(0, I))"


def architecture(model: nn.Module, ax=None, title: str | None = None):
    """Draw a model's architecture from its modules (survey Figs. 1, 2, 9, 10, 11).

    Autoencoders and their subclasses (Fig. 1; the denoising autoencoder with its corruption,
    Fig. 2) and the VAE (Fig. 9) are drawn as a row of bars, one per layer, each labelled
    with the layer and the shape it outputs for one example (traced by running the model);
    the VQ-VAE (Fig. 10) and the two-level VQ-VAE-2 (Fig. 11) as boxes of their parts with
    their traced output shapes and codebook sizes. Returns the matplotlib axes.
    """
    from companion.models import VAE, VQVAE, VQVAE2, Autoencoder

    if isinstance(model, VQVAE2):
        return _vqvae2(model, ax, title)
    if isinstance(model, VQVAE):
        return _vqvae(model, ax, title)
    if isinstance(model, VAE):
        items, enc, dec, note = _vae_items(model)
    elif isinstance(model, Autoencoder):
        items, enc, dec, note = _autoencoder_items(model)
    else:
        raise TypeError(f"architecture draws an Autoencoder (or subclass), VAE, VQVAE or VQVAE2, "
                        f"got {type(model).__name__}")
    ax = _ax(ax, (max(6.0, 1.05 * len(items)), 3.4))
    biggest = max(n for _, _, n, _ in items)
    _chain(ax, items, biggest)
    _brace(ax, *enc, "encoder g_φ" if not isinstance(model, VAE) else "encoder q_φ(z|x)")
    _brace(ax, *dec, "decoder f_θ" if not isinstance(model, VAE) else "decoder p_θ(x|z)")
    if isinstance(model, VAE):                 # the noise enters z from outside the network
        code = enc[1] + 1
        ax.add_patch(plt.Circle((code, 2.0), 0.3, fc=COLORS["random"], ec="k", lw=0.8))
        ax.text(code, 2.0, "ε ∼\nN(0, I)", ha="center", va="center", fontsize=7)
        ax.annotate("", (code, 1.15), (code, 1.69), arrowprops=dict(arrowstyle="->", lw=0.8))
    if note:
        ax.text(len(items) - 1, -2.05, note, ha="right", va="top", fontsize=8, style="italic")
    return _finish(ax, (-0.7, len(items) - 0.3), (-2.4, 2.6), title)


class Node(NamedTuple):
    """A box (or, for the role ``random``, a circle) of a block diagram."""

    x: float
    y: float
    text: str
    role: str
    w: float = 1.3
    h: float = 0.62


def _edge_point(n: Node, dx: float, dy: float, sign: int) -> tuple[float, float]:
    """Where the segment from n's centre along ±(dx, dy) leaves the box."""
    fx = (n.w / 2) / abs(dx) if dx else math.inf
    fy = (n.h / 2) / abs(dy) if dy else math.inf
    f = min(fx, fy) + 0.02
    return n.x + sign * f * dx, n.y + sign * f * dy


def _graph(ax, nodes: dict[str, Node], edges, fontsize: float = 7.5) -> None:
    """Draw the nodes and the arrows between them; an edge is (from, to) or (from, to, label)."""
    for n in nodes.values():
        if n.role == "random":
            ax.add_patch(plt.Circle((n.x, n.y), n.w / 2, fc=COLORS[n.role], ec="k", lw=0.8))
        else:
            ax.add_patch(FancyBboxPatch((n.x - n.w / 2, n.y - n.h / 2), n.w, n.h, boxstyle="round,pad=0.03",
                                        fc=COLORS[n.role], ec="k", lw=0.8))
        ax.text(n.x, n.y, n.text, ha="center", va="center", fontsize=fontsize)
    for e in edges:
        a, b = nodes[e[0]], nodes[e[1]]
        dx, dy = b.x - a.x, b.y - a.y
        ax.annotate("", _edge_point(b, dx, dy, -1), _edge_point(a, dx, dy, 1),
                    arrowprops=dict(arrowstyle="->", lw=0.9))
        if len(e) > 2:
            ax.text((a.x + b.x) / 2 + 0.08, (a.y + b.y) / 2 + 0.05, e[2], ha="left", va="bottom", fontsize=7)


def _layers_text(title: str, layers: list[Layer]) -> str:
    return title + "\n" + "\n".join(f"{l.kind} → {_shape_text(l.shape)}" for l in layers)


def _shapes_of_children(model, x) -> dict[str, tuple[int, ...]]:
    """Per-example output shape of each direct child module in one forward pass."""
    names = {m: n for n, m in model.named_children()}
    return {names[m]: shape for m, shape in _output_shapes(model, list(names), x).items()}


def _finish(ax, xlim, ylim, title):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# chapter 8's notation: encoder g_φ, decoder f_θ, code vectors e_c, the chosen code c*
ZE = r"$\mathbf{z}_\mathrm{e} = g_\phi(\mathbf{x})$"
ZQ = "\n".join([r"$\mathbf{z}_\mathrm{q} = \mathbf{e}_{c^*}$,",
                r"$c^* = \mathrm{argmin}_c\, \Vert\mathbf{z}_\mathrm{e} - \mathbf{e}_c\Vert$"])


def _vqvae(model, ax, title):
    cfg = model.config
    s = _shapes_of_children(model, torch.zeros(2, *cfg.image_shape))
    enc = trace_layers(model.encoder, torch.zeros(2, *cfg.image_shape))
    dec = trace_layers(model.decoder, torch.zeros(2, *s["encoder"]))
    d, h, w = s["encoder"]
    ax = _ax(ax, (11, 3.2))
    nodes = {
        "x": Node(0, 0, f"x\n{_shape_text(cfg.image_shape)}", "data", 1.0),
        "enc": Node(2.0, 0, _layers_text(r"encoder $g_\phi$", enc), "encoder", 2.0, 0.3 + 0.2 * len(enc)),
        "ze": Node(4.1, 0, ZE + f"\n{h}×{w} vectors\nof size {d}", "code", 1.4, 0.75),
        "cb": Node(6.1, 1.45, r"codebook $\mathbf{e}_0$ … $\mathbf{e}_{K-1}$" + f"\nK = {cfg.num_codes}, D = {d}\n"
                   f"({cfg.codebook})", "codebook", 1.8, 0.75),
        "zq": Node(6.1, 0, ZQ + f"\n{h}×{w} indices", "code", 2.0, 0.75),
        "dec": Node(8.4, 0, _layers_text(r"decoder $f_\theta$", dec), "decoder", 2.1, 0.3 + 0.2 * len(dec)),
        "out": Node(10.4, 0, f"x′\n{_shape_text(s['decoder'])}", "data", 1.0),
    }
    _graph(ax, nodes, [("x", "enc"), ("enc", "ze"), ("ze", "zq"), ("cb", "zq", "nearest"), ("zq", "dec"),
                       ("dec", "out")])
    ax.annotate("", (4.1, -0.42), (6.1, -0.42), arrowprops=dict(arrowstyle="->", color="C3", ls="--", lw=1,
                                                                connectionstyle="arc3,rad=-0.4"))
    ax.text(5.1, -1.0, r"gradient copied from $\mathbf{z}_\mathrm{q}$ to $\mathbf{z}_\mathrm{e}$ (straight-through)",
            ha="center", fontsize=7.5, color="C3")
    return _finish(ax, (-0.6, 11.0), (-1.2, 2.0), title)


def _vqvae2(model, ax, title):
    cfg = model.config
    s = _shapes_of_children(model, torch.zeros(2, *cfg.image_shape))
    t, b = s["quantizer_top"], s["quantizer_bottom"]
    ax = _ax(ax, (12, 4.3))
    W = 1.7
    nodes = {
        "x": Node(0, 0, f"x\n{_shape_text(cfg.image_shape)}", "data", 1.0),
        "encb": Node(1.8, 0, f"encoder_bottom\n→ h_bot {_shape_text(s['encoder_bottom'])}", "encoder", W),
        "enct": Node(1.8, 1.6, f"encoder_top\n→ {_shape_text(s['encoder_top'])}", "encoder", W),
        "qt": Node(3.9, 1.6, f"quantizer_top\nK = {cfg.num_codes_top}\n{t[1]}×{t[2]} codes", "code", W, 0.75),
        "dect": Node(6.0, 1.6, f"decoder_top\n→ {_shape_text(s['decoder_top'])}", "decoder", W),
        "cond": Node(6.0, 0, f"condition [h_bot, ·]\n→ {_shape_text(s['condition'])}", "encoder", W),
        "qb": Node(8.1, 0, f"quantizer_bottom\nK = {cfg.num_codes_bottom}\n{b[1]}×{b[2]} codes", "code", W, 0.75),
        "up": Node(8.1, 2.8, f"upsample_top\n→ {_shape_text(s['upsample_top'])}", "decoder", W),
        "dec": Node(10.2, 0, f"decoder\n[e_bottom, up(e_top)]\n→ {_shape_text(s['decoder'])}", "decoder", W, 0.75),
        "out": Node(11.9, 0, f"x′\n{_shape_text(s['decoder'])}", "data", 1.0),
    }
    _graph(ax, nodes, [("x", "encb"), ("encb", "enct"), ("enct", "qt"), ("qt", "dect"), ("dect", "cond"),
                       ("encb", "cond"), ("cond", "qb"), ("qt", "up"), ("up", "dec"), ("qb", "dec"), ("dec", "out")])
    ax.text(1.8, 2.25, "top level: global structure", ha="center", fontsize=8, style="italic")
    ax.text(8.1, -0.7, "bottom level: local detail, conditioned on the top", ha="center", fontsize=8, style="italic")
    return _finish(ax, (-0.6, 12.5), (-1.0, 3.3), title)


# --- graphical models (daft-pgm) --------------------------------------------------------------

def _daft():
    import daft   # daft-pgm: imported here so that the package imports without drawing anything
    return daft


def _render(pgm):
    import numpy as np
    with np.errstate(divide="ignore", invalid="ignore"):   # daft divides by a zero dx on vertical edges
        return pgm.render()


def _dashed(color="k"):
    return {"ls": "--", "color": color, "ec": color}


def vae_graphical_model():
    """The VAE as a graphical model (survey Fig. 6): z → x is the generative model p_θ
    (solid), x → z the approximate posterior q_φ(z|x) (dashed), n examples in a plate."""
    daft = _daft()
    pgm = daft.PGM(node_unit=1.0, grid_unit=2.0)
    pgm.add_node("phi", r"$\phi$", 0.0, 1.6, fixed=True)
    pgm.add_node("theta", r"$\theta$", 2.4, 1.6, fixed=True)
    pgm.add_node("z", r"$\mathbf{z}$", 1.2, 1.6)
    pgm.add_node("x", r"$\mathbf{x}$", 1.2, 0.4, observed=True)
    pgm.add_edge("z", "x", label=r"$p_\theta(\mathbf{x}|\mathbf{z})$", xoffset=0.5)
    pgm.add_edge("theta", "z")
    pgm.add_edge("theta", "x")
    pgm.add_edge("phi", "z", plot_params=_dashed("C0"))
    pgm.add_plate([0.6, -0.1, 1.2, 2.3], label=r"$n$", position="bottom right")
    ax = _render(pgm)
    # q_φ(z|x) runs against the generative arrow: drawn curved, so the two do not overlap
    nodes = sorted((p for p in ax.patches if type(p).__name__ == "Ellipse" and p.width >= 0.5),
                   key=lambda p: -p.center[1])
    (zx, zy), (xx, xy) = nodes[0].center, nodes[-1].center
    r = nodes[0].width / 2
    ax.annotate("", (zx - 0.7 * r, zy - 0.7 * r), (xx - 0.7 * r, xy + 0.7 * r),
                arrowprops=dict(arrowstyle="-|>", color="C0", ls="--", lw=1.0, connectionstyle="arc3,rad=-0.5"))
    ax.text(zx - 1.05, (zy + xy) / 2, r"$q_\phi(\mathbf{z}|\mathbf{x})$", ha="right", va="center", color="C0",
            fontsize=10)
    return ax


def state_space_model(steps: int = 4):
    """A latent state-space model as a Markov chain (survey Fig. 13): z_1 → z_2 → … with each
    x_t drawn from p(x_t | z_t); ``steps`` time steps are drawn."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= 12:
        raise ValueError(f"steps must be an int in 2…12, got {steps!r}")
    daft = _daft()
    pgm = daft.PGM(node_unit=1.0, grid_unit=1.8)
    for t in range(1, steps + 1):
        pgm.add_node(f"z{t}", rf"$\mathbf{{z}}_{t}$", t, 1.2)
        pgm.add_node(f"x{t}", rf"$\mathbf{{x}}_{t}$", t, 0.0, observed=True)
        pgm.add_edge(f"z{t}", f"x{t}")
        if t > 1:
            pgm.add_edge(f"z{t - 1}", f"z{t}")
    pgm.add_text(steps + 0.45, 1.15, r"$\cdots$")
    return _render(pgm)


def tdvae_training_graph(model=None):
    """One TD-VAE training pair (t₁, t₂) (survey Fig. 14): beliefs h = RNN(h, x) (boxes; the
    paper's b), z_{t₂} ∼ p_B(·|h_{t₂}), z_{t₁} ∼ p_S(·|z_{t₂}, h_{t₁}, h_{t₂}) (dashed: the
    inference side), and the generative side p_B(z_{t₁}|h_{t₁}), p_T(z_{t₂}|z_{t₁}),
    p_D(x_{t₂}|z_{t₂}); the labels B, S, T, D are upright, as in chapter 10.
    Given a :class:`~companion.models.TDVAE`, nodes are labelled with its sizes."""
    from companion.models import TDVAE

    if model is not None and not isinstance(model, TDVAE):
        raise TypeError(f"expected a TDVAE or None, got {type(model).__name__}")
    daft = _daft()
    pgm = daft.PGM(node_unit=1.1, grid_unit=2.2)
    size = {} if model is None else {"b": model.config.belief_size, "z": model.config.z_size,
                                     "x": _numel(model.config.frame_shape)}
    def lab(sym, t, key):
        n = size.get(key)
        return rf"$\mathbf{{{sym}}}_{{t_{t}}}$" + ("" if n is None else f"\n{n}")
    for t, x0 in ((1, 0.0), (2, 2.4)):
        pgm.add_node(f"x{t}", lab("x", t, "x"), x0, 0.0, observed=True)
        pgm.add_node(f"b{t}", lab("h", t, "b"), x0, 1.2, shape="rectangle")
        pgm.add_node(f"z{t}", lab("z", t, "z"), x0, 2.4)
        pgm.add_edge(f"x{t}", f"b{t}", label="RNN", xoffset=-0.3)
    pgm.add_edge("b1", "b2", label="…", yoffset=-0.25)
    inference = _dashed("C0")
    pgm.add_edge("b2", "z2", plot_params=inference, label=r"$p_\mathrm{B}$", xoffset=0.25)
    pgm.add_edge("z2", "z1", plot_params=inference, label=r"$p_\mathrm{S}$", yoffset=0.25)
    pgm.add_edge("b2", "z1", plot_params=inference)
    pgm.add_edge("b1", "z1", label=r"$p_\mathrm{B}$", xoffset=-0.3)
    pgm.add_node("x2d", r"$\hat{\mathbf{x}}_{t_2}$", 3.8, 2.4)
    pgm.add_edge("z2", "x2d", label=r"$p_\mathrm{D}$")
    pgm.add_node("z2t", r"$\mathbf{z}_{t_2}$", 1.2, 3.4)
    pgm.add_edge("z1", "z2t", label=r"$p_\mathrm{T}$", xoffset=-0.25)
    return _render(pgm)


# --- the reparameterisation trick ------------------------------------------------------------

def gradient_reaches_parameters(reparameterised: bool) -> bool:
    """Whether a sample z ∼ N(μ, σ²) carries a gradient back to (μ, σ): asks autograd, with
    ``rsample`` (z = μ + σ ε) or ``sample`` (z drawn, detached)."""
    if not isinstance(reparameterised, bool):
        raise TypeError(f"reparameterised must be True or False, got {reparameterised!r}")
    mu = torch.zeros(3, requires_grad=True)
    log_sigma = torch.zeros(3, requires_grad=True)
    q = torch.distributions.Normal(mu, log_sigma.exp())
    z = q.rsample() if reparameterised else q.sample()
    if not z.requires_grad:
        return False
    (z ** 2).sum().backward()
    return mu.grad is not None and bool(mu.grad.abs().sum() > 0)


def reparameterisation_graph(axes=None):
    """Two computation graphs (survey Fig. 8): left, z drawn from q_φ(z|x); right,
    z = μ_φ(x) + σ_φ(x) ⊙ ε with ε ∼ N(0, I). Forward edges are black; a red dashed arrow is
    drawn back to φ only where :func:`gradient_reaches_parameters` finds that autograd
    carries ∂L/∂φ, and a cross where it does not. Returns the two axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    elif len(axes) != 2:
        raise ValueError(f"reparameterisation_graph draws two panels: pass two axes, got {len(axes)}")
    for ax, rep in zip(axes, (False, True)):
        ax.set_axis_off()
        flows = gradient_reaches_parameters(rep)
        nodes = {"phi": Node(0, 1.6, "φ", "op", 0.6, 0.5), "x": Node(0, 0, "x", "data", 0.6, 0.5),
                 "L": Node(4.7, 0.8, "L = −log p_θ(x|z)\n+ KL", "op", 1.5, 0.6)}
        if rep:
            nodes.update(ms=Node(1.3, 0.8, "μ_φ(x), σ_φ(x)", "encoder", 1.2, 0.5),
                         eps=Node(3.0, 1.9, "ε ∼\nN(0, I)", "random", 0.7, 0.7),
                         z=Node(3.0, 0.8, "z = μ + σ⊙ε", "code", 1.1, 0.5))
            edges = [("phi", "ms"), ("x", "ms"), ("ms", "z"), ("eps", "z"), ("z", "L")]
            ax.set_title("reparameterised: z = μ + σ ⊙ ε, deterministic given ε", fontsize=9)
        else:
            nodes["z"] = Node(2.2, 0.8, "z ∼\nq_φ(z|x)", "random", 0.9, 0.9)
            edges = [("phi", "z"), ("x", "z"), ("z", "L")]
            ax.set_title("sampled: z ∼ q_φ(z|x), a random node", fontsize=9)
        _graph(ax, nodes, edges)
        # the backward pass, as autograd reports it: ∂L/∂z always exists; whether it goes on to φ
        if flows:
            ax.annotate("", (0.3, 1.75), (4.3, 1.15), arrowprops=dict(
                arrowstyle="->", color="C3", ls="--", lw=1.1, connectionstyle="arc3,rad=0.35"))
            ax.text(2.0, 2.6, "∂L/∂φ flows back through μ and σ", ha="center", fontsize=8, color="C3")
        else:
            z = nodes["z"]
            ax.annotate("", (z.x + 0.3, z.y + 0.4), (4.3, 1.15), arrowprops=dict(
                arrowstyle="->", color="C3", ls="--", lw=1.1, connectionstyle="arc3,rad=0.3"))
            ax.annotate("", (0.3, 1.75), (z.x - 0.2, z.y + 0.45), arrowprops=dict(
                arrowstyle="->", color="0.55", ls="--", lw=1.1, connectionstyle="arc3,rad=0.3"))
            ax.text(1.0, 1.55, "✗", ha="center", va="center", fontsize=16, color="C3")
            ax.text(2.0, 2.6, "∂L/∂z exists, but no gradient reaches φ", ha="center", fontsize=8, color="0.3")
        ax.set_xlim(-0.6, 5.6)
        ax.set_ylim(-0.5, 2.9)
    return axes


# --- VQ-VAE-2's procedure ---------------------------------------------------------------------

def procedure_markdown(steps: list[tuple[str, str, str]]) -> str:
    """Steps (stage, step, function name), such as
    :func:`companion.experiments.ch09_vq_vae2.procedure` gives, as a numbered Markdown list,
    grouped by stage."""
    if not isinstance(steps, list) or not all(isinstance(s, tuple) and len(s) == 3 for s in steps):
        raise TypeError("procedure_markdown expects a list of (stage, step, function name) tuples, "
                        "as companion.experiments.ch09_vq_vae2.procedure returns")
    lines, stage = [], None
    for i, (s, text, fn) in enumerate(steps, 1):
        if s != stage:
            lines.append(f"\n**{s.capitalize()}**\n")
            stage = s
        lines.append(f"{i}. {text}: `{fn}`")
    return "\n".join(lines).strip()
