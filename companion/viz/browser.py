"""Explorers that decode in the reader's browser: no kernel, no network.

The frame-based explorers of :mod:`companion.viz.widgets` show images computed in advance, so a
reader moves in coarse steps along a few axes. The book's small decoders f_θ are MLPs of a few
hundred thousand weights, and a forward pass of one takes well under a millisecond in plain
JavaScript. So :func:`browser_explorer` copies the decoder into the page, and the reader's browser
decodes every point the pointer or a slider picks. The same output works on the built site, in
JupyterLab (a trusted notebook) and in Colab.

**The format.** Each weight matrix W is stored as 16-bit integers q with one float32 scale per
row r: s_r = max_c |W_rc| / 32767 and W_rc ≈ q_rc · s_r, so each weight is off by at most s_r / 2.
The integers go in as two byte planes (low bytes, then high bytes), deflated: about 12 % smaller.
Biases stay float32. Everything is base64 inside the page. Float16 has the same size but keeps
only 11 significant bits of every weight. On the book's decoders that gave pixel errors up to
2·10⁻³, where the per-row scale stays under 5·10⁻⁴ (the page's decode against PyTorch's).

**The check.** :func:`export_decoder` decodes random codes both ways, with the model and with
:func:`decode_exported` (the page script's forward pass, written again in NumPy). It refuses a
model whose two decodes differ by more than :data:`BOUND` in any pixel. A decoder that is not an
MLP of supported activations is refused before anything is exported. Use
:func:`~companion.viz.widgets.static_interact` for such a decoder: it precomputes frames.
"""
from __future__ import annotations

import base64
import html
import json
import math
import zlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from torch import nn

from companion.runtime import plain
from companion.viz.plots import _count, _span

#: the largest difference, in any pixel in [0, 1], between the exported decode and the model's
BOUND = 1e-3
QMAX = 32767
KINDS = ("map", "traversal")
MAX_POINTS = 5000
MAX_STARTS = 8
MAX_CHECK = 20_000
MAX_SCALE = 16
#: weights a page may carry: about 1.1 MB in the page (2 bytes each, deflated, in base64)
MAX_WEIGHTS = 600_000
#: activations the page's script has, by module type
ACTIVATIONS = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Identity: "identity", nn.ELU: "elu"}
#: the page's script, read once: a package built without it fails on import, not in a chapter
SCRIPT = resources.files("companion.viz").joinpath("browser_explorer.js").read_text(encoding="utf-8")
FALLBACK = ("This explorer runs the decoder in your browser with a script. On the website, allow "
            "JavaScript. In JupyterLab, run the cell or trust the notebook (File ▸ Trust Notebook).")


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def _pack(q: np.ndarray) -> str:
    """int16 → the low bytes of all, then the high bytes of all, deflated (zlib), base64. The
    high bytes are mostly 0x00 and 0xFF, so the planes compress where interleaved bytes do not."""
    planes = np.ascontiguousarray(q, dtype="<i2").view(np.uint8).reshape(-1, 2).T
    return base64.b64encode(zlib.compress(planes.tobytes(), 9)).decode("ascii")


def _bias(linear: nn.Linear) -> np.ndarray:
    return (linear.bias.detach().cpu().numpy() if linear.bias is not None
            else np.zeros(linear.out_features, dtype=np.float32))


def _unpack(text: str, n: int) -> np.ndarray:
    planes = np.frombuffer(zlib.decompress(base64.b64decode(text)), np.uint8).reshape(2, n)
    return np.ascontiguousarray(planes.T).view("<i2").ravel()


def _mlp_of(model) -> tuple[list[nn.Linear], list[str], tuple[int, ...]]:
    """The decoder's Linear layers, the activation after each, and the image shape (C, H, W);
    a clear error for anything the page's script cannot run."""
    from companion.models.base import EncoderDecoder
    from companion.nn import MLP

    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"browser_explorer needs a model with a decoder, such as an Autoencoder or a VAE, "
                        f"got {type(model).__name__}")
    decoder = getattr(model, "decoder", None)
    parts = list(decoder) if isinstance(decoder, nn.Sequential) else []
    if not (parts and isinstance(parts[0], MLP) and len(parts) <= 2
            and (len(parts) == 1 or isinstance(parts[1], nn.Unflatten))):
        kind = type(decoder).__name__ if decoder is not None else "not a module"
        raise ValueError(f"only an MLP decoder runs in the browser; the decoder of this {type(model).__name__} is "
                         f"{kind} (convolutions or a codebook): use companion.viz.widgets.static_interact, "
                         "which draws frames in advance")
    linears, acts = [], []
    for layer in parts[0]:
        if isinstance(layer, nn.Flatten):
            continue
        if isinstance(layer, nn.Linear):
            linears.append(layer)
            acts.append("identity")
        elif type(layer) in ACTIVATIONS and linears and not (isinstance(layer, nn.ELU) and layer.alpha != 1.0):
            acts[-1] = ACTIVATIONS[type(layer)]
        else:
            raise ValueError(f"the decoder's {layer} has no browser version; supported: Linear and "
                             f"{sorted(set(ACTIVATIONS.values()))}")
    dtype = linears[0].weight.dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the decoder's weights are {dtype}; export a float32 or float64 model "
                         "(model.float()), whose decode the 16-bit copy can match")
    count = sum(layer.weight.numel() for layer in linears)
    if count > MAX_WEIGHTS:
        raise ValueError(f"the decoder has {count:,} weights, more than {MAX_WEIGHTS:,} for one page "
                         "(about 1.1 MB): use a smaller decoder, or static_interact")
    width = linears[-1].out_features
    shape = tuple(parts[1].unflattened_size) if len(parts) == 2 else (1, math.isqrt(width), math.isqrt(width))
    if len(shape) != 3 or shape[0] not in (1, 3) or math.prod(shape) != width:
        raise ValueError(f"the decoder must draw images (1 or 3, H, W) from its {width} outputs, got shape {shape}")
    return linears, acts, shape


def _output_map(model, z: torch.Tensor) -> tuple[str, torch.Tensor]:
    """How ``decode_mean`` turns the decoder's last layer into pixels: ``"identity"`` or
    ``"sigmoid"`` (a Bernoulli decoder's mean), found by comparing the two on codes ``z``;
    returns it and the model's images of ``z``."""
    with torch.no_grad():
        raw = model.decoder(z).flatten(1).double()
        mean = model.decode_mean(z)
    if not isinstance(mean, torch.Tensor) or mean.dim() != 4:
        raise ValueError(f"{type(model).__name__}.decode_mean must give images (B, C, H, W) for codes (B, m)")
    flat = mean.flatten(1).double()
    for name, f in (("identity", lambda t: t), ("sigmoid", torch.sigmoid)):
        if torch.allclose(f(raw), flat, atol=1e-5, rtol=1e-5):
            return name, mean
    raise ValueError(f"{type(model).__name__}.decode_mean is neither its decoder's output nor the sigmoid of it, "
                     "so the browser could not reproduce it")


def export_decoder(model, check: torch.Tensor | None = None) -> dict:
    """The decoder f_θ of ``model`` as the page's script reads it, checked against the model.

    Args:
        model: an :class:`~companion.models.base.EncoderDecoder` whose ``decoder`` is an MLP
            (Linear layers with ReLU, ELU, tanh, sigmoid or no activation), such as an
            ``Autoencoder`` or a ``VAE`` with ``architecture="mlp"``.
        check: codes (N, m) at which the exported decode must match ``model.decode_mean`` within
            :data:`BOUND`; 256 random codes of the standard normal, times 3, are always added.
            :func:`browser_explorer` passes the map's codes and a 12 × 12 grid over its extent,
            or the traversal's starts.

    Returns:
        a dict: ``codeSize`` m, ``imageShape`` (C, H, W), ``out`` (the output map),
        ``layers`` (each: ``rows``, ``cols``, ``act``, ``q`` the int16 weights as two deflated
        byte planes, ``scale`` and ``bias`` float32, all base64, little-endian), and ``maxError``, the largest pixel difference on
        the check codes.

    Reading the model changes nothing: no gradient, no mode switch, no global random draw.
    """
    linears, acts, shape = _mlp_of(model)
    weight = linears[0].weight
    if weight.device.type == "meta":
        raise ValueError("the model's weights are on the meta device: they have no values to export")
    m = linears[0].in_features
    z = torch.randn(256, m, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    if check is not None:
        if not isinstance(check, torch.Tensor) or check.dim() != 2 or check.shape[1] != m or len(check) > MAX_CHECK:
            raise ValueError(f"check must be codes of shape (N, {m}) with N ≤ {MAX_CHECK:,}, got "
                             f"{getattr(check, 'shape', type(check).__name__)}")
        if not torch.isfinite(check).all():
            raise ValueError("check codes must be finite")
        z = torch.cat([z, check.detach().cpu().double()])
    z = z.to(weight.dtype)                                     # the codes the model sees, used for both decodes
    out, images = _output_map(model, z.to(weight.device))
    layers = []
    for linear, act in zip(linears, acts):
        w = linear.weight.detach().cpu().double().numpy()
        scale = np.abs(w).max(axis=1) / QMAX
        scale[scale == 0] = 1.0
        scale = scale.astype(np.float32)
        q = np.round(w / scale[:, None].astype(np.float64)).astype(np.int16)
        layers.append({"rows": linear.out_features, "cols": linear.in_features, "act": act,
                       "q": _pack(q), "scale": _b64(scale, "<f4"),
                       "bias": _b64(_bias(linear), "<f4")})
    payload = {"codeSize": m, "imageShape": list(shape), "out": out, "layers": layers}
    error = (decode_exported(payload, z) - images.detach().cpu().double()).abs().max().item()
    if not error <= BOUND:
        raise ValueError(f"the exported decoder differs from the model by {error:.2g} in a pixel, more than "
                         f"{BOUND:g}: its weights are too uneven within a row for 16-bit integers")
    payload["maxError"] = error
    return payload


def decode_exported(payload: dict, z: torch.Tensor) -> torch.Tensor:
    """Decode codes ``z`` (B, m) with an exported decoder, as the page's script does: weights
    q · s as float32, sums in float64. Returns images (B, C, H, W), float64."""
    if not isinstance(payload, dict) or "layers" not in payload:
        raise TypeError(f"decode_exported takes what export_decoder returns, got {type(payload).__name__}")
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != payload["codeSize"]:
        raise ValueError(f"z must be codes of shape (B, {payload['codeSize']}), got {getattr(z, 'shape', type(z).__name__)}")
    act = {"relu": lambda h: np.maximum(h, 0), "sigmoid": lambda h: 1 / (1 + np.exp(-h)), "tanh": np.tanh,
           "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0))), "identity": lambda h: h}
    h = z.detach().cpu().double().numpy()
    with np.errstate(over="ignore"):                        # exp(−h) overflows for h < −709: σ = 0, as in JS
        for layer in payload["layers"]:
            q = _unpack(layer["q"], layer["rows"] * layer["cols"]).reshape(layer["rows"], layer["cols"])
            w = (q.astype(np.float32) * _unb64(layer["scale"], "<f4")[:, None]).astype(np.float64)
            h = act[layer["act"]](h @ w.T + _unb64(layer["bias"], "<f4"))
        h = act[payload["out"]](h)
    return torch.from_numpy(h).reshape(len(h), *payload["imageShape"])


@dataclass(frozen=True)
class BrowserExplorer:
    """One self-contained HTML output: the data, the script and a message for where scripts
    cannot run. ``weight_bytes`` is what the exported weights add to the page, ``page_bytes``
    the whole output."""

    html: str
    kind: str
    weight_bytes: int
    max_error: float

    @property
    def error_bound(self) -> float:
        """``max_error`` rounded up to 4 decimals: what a page can quote as "less than"."""
        return math.ceil(self.max_error * 1e4) / 1e4

    @property
    def page_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return (f"BrowserExplorer(kind={self.kind!r}, {self.page_bytes / 1e6:.2f} MB in the page, of which weights "
                f"{self.weight_bytes / 1e6:.2f} MB; largest pixel difference from PyTorch {self.max_error:.1e})")


def _codes(value, m: int, name: str, most: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of codes (N, {m}), got {type(value).__name__}")
    if value.dim() != 2 or value.shape[1] != m or not 1 <= len(value) <= most:
        raise ValueError(f"{name} must be codes (N, {m}) with 1 ≤ N ≤ {most}, got shape {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite")
    return value.detach().cpu().float()


def _labels(labels, n: int | None) -> np.ndarray:
    """Integer labels 0–9, one per code: the colours of matplotlib's tab10, as in the book's plots."""
    try:
        a = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    except (TypeError, ValueError, RuntimeError):
        a = np.asarray([None])
    if n is None or a.shape != (n,) or a.dtype.kind not in "iu" or (n and not 0 <= a.min() <= a.max() <= 9):
        raise ValueError(f"labels must be integers 0–9 (one colour each), one per code ({n},); "
                         f"got {a.dtype} of shape {a.shape}" + ("" if n is not None else ", and no codes"))
    return a.astype(np.uint8)


def _map_data(m: int, codes, labels, x_range, y_range, ends) -> dict:
    if m != 2:
        raise ValueError(f"kind='map' needs a 2-D code; this model's code has {m} numbers: use kind='traversal'")
    data: dict = {"start": [0.0, 0.0], "ends": None}
    if codes is not None:
        codes = _codes(codes, 2, "codes", MAX_POINTS)
        data["points"] = _b64(codes.numpy(), "<f4")
        low, high = torch.quantile(codes, 0.01, dim=0), torch.quantile(codes, 0.99, dim=0)
        pad = (high - low) * 0.1
        auto = [[(low - pad)[j].item(), (high + pad)[j].item()] for j in range(2)]
        data["start"] = codes.median(dim=0).values.tolist()
    else:
        auto = [[-3.0, 3.0], [-3.0, 3.0]]
    if labels is not None:
        data["labels"] = _b64(_labels(labels, None if codes is None else len(codes)), "<u1")
    if ends is not None:
        try:
            pair = torch.stack([torch.as_tensor(e, dtype=torch.float32).detach().cpu().flatten() for e in ends])
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"ends must be two 2-D codes (A, B), got {ends!r}") from None
        if pair.shape != (2, 2):
            raise ValueError(f"ends must be two 2-D codes (A, B), got shape {tuple(pair.shape)}")
        data["ends"] = _codes(pair, 2, "ends", 2).tolist()
        for j, (lo, hi) in enumerate(auto):                  # the default extent shows both ends
            auto[j] = [min(lo, *pair[:, j].tolist()), max(hi, *pair[:, j].tolist())]
    for j, (name, given) in enumerate((("x_range", x_range), ("y_range", y_range))):
        span = _span(given, name) if given is not None else auto[j]
        if data["ends"] and not all(span[0] <= e[j] <= span[1] for e in data["ends"]):
            raise ValueError(f"{name} {span} leaves out an end: A and B must lie on the map")
        data["xRange" if j == 0 else "yRange"] = span
    return data


def _traversal_data(m: int, shape, starts, images, dims, names, span) -> dict:
    starts = _codes(starts, m, "starts", MAX_STARTS) if starts is not None else torch.zeros(1, m)
    if dims is None:
        dims = list(range(m))
    elif isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
        raise ValueError(f"dims must be a list of coordinates in 0…{m - 1}, got {dims!r}")
    dims = [plain(j) for j in dims]
    if (not dims or len(set(dims)) != len(dims)
            or not all(isinstance(j, int) and not isinstance(j, bool) and 0 <= j < m for j in dims)):
        raise ValueError(f"dims must be distinct int coordinates in 0…{m - 1}, got {dims}")
    names = [f"z{j}" for j in dims] if names is None else names
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or len(names) != len(dims) \
            or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be a list of {len(dims)} strings, one per coordinate in dims, got {names!r}")
    lo, hi = _span(span, "span")
    chosen = starts[:, dims]                                  # each slider also reaches its starts' values
    data = {"starts": starts.tolist(), "dims": dims, "names": list(names),
            "span": [min(lo, chosen.min().item()), max(hi, chosen.max().item())]}
    if images is not None:
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != (len(starts), *shape):
            raise ValueError(f"images must be the start codes' images ({len(starts)}, {', '.join(map(str, shape))}), "
                             f"got {getattr(images, 'shape', type(images).__name__)}")
        if not images.is_floating_point() or not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError("images must be floating point, with every value in [0, 1]")
        pixels = (images.detach().cpu().float() * 255).round().to(torch.uint8).numpy()
        data["images"] = [_b64(p, "<u1") for p in pixels]
    return data


def _slider_ends(data: dict) -> torch.Tensor:
    """Every start with one of its coordinates at either end of the sliders: where a traversal
    reaches furthest, and so where the copy is checked."""
    codes = []
    for start in data["starts"]:
        for j in data["dims"]:
            for v in data["span"]:
                code = list(start)
                code[j] = v
                codes.append(code)
    return torch.tensor(codes)


def browser_explorer(model, kind: str = "map", *, codes: torch.Tensor | None = None, labels=None,
                     x_range=None, y_range=None, ends=None, starts: torch.Tensor | None = None,
                     images: torch.Tensor | None = None, dims=None, names=None, span=(-3.0, 3.0),
                     scale: int | None = None, description: str = "") -> BrowserExplorer:
    """An explorer of ``model``'s code space that decodes in the reader's browser.

    Args:
        model: an Autoencoder, VAE or other model whose ``decoder`` is an MLP (see
            :func:`export_decoder`); a convolutional decoder is refused with a ``ValueError``.
        kind: ``"map"`` (a 2-D code: the pointer picks z on a scatter of ``codes``) or
            ``"traversal"`` (one slider per coordinate in ``dims``, all live).
        codes, labels: the map's scatter, codes (N, 2) and their integer labels (N,) for colour.
        x_range, y_range: the map's extent, (low, high); default: the codes' 1–99 % range plus 10 %.
        ends: two codes (A, B): the map adds a slider that walks z = (1 − t) A + t B, t from 0 to 1.
        starts: the traversal's start codes (S, m), S ≤ 8 (default: the zero code).
        images: the start codes' own images (S, C, H, W) in [0, 1], shown beside the decode.
        dims, names: the traversal's coordinates and each slider's label (default ``z{j}``).
        span: each traversal slider's (low, high), widened where a start lies outside it.
        scale: pixel magnification of the decoded image (default: about 170 pixels wide).
        description: a caption above the controls.

    Returns:
        a :class:`BrowserExplorer`; a notebook displays it as HTML.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(description, str):
        raise TypeError(f"description must be a string, got {type(description).__name__}")
    map_only = {"codes": codes, "labels": labels, "x_range": x_range, "y_range": y_range, "ends": ends}
    traversal_only = {"starts": starts, "images": images, "dims": dims, "names": names}
    for name, value in (traversal_only if kind == "map" else map_only).items():
        if value is not None:
            raise ValueError(f"{name} belongs to kind={'traversal' if kind == 'map' else 'map'!r}, not kind={kind!r}")
    linears, _, shape = _mlp_of(model)
    m = linears[0].in_features
    if kind == "map":
        data = _map_data(m, codes, labels, x_range, y_range, ends)
        grid = torch.cartesian_prod(torch.linspace(*data["xRange"], 12), torch.linspace(*data["yRange"], 12))
        check = torch.cat([grid, torch.tensor(data["ends"] or [data["start"]])]
                          + ([codes.detach().cpu().float()] if codes is not None else []))
    else:
        data = _traversal_data(m, shape, starts, images, dims, names, span)
        check = torch.cat([torch.tensor(data["starts"]), _slider_ends(data)])
    scale = _count(scale, "scale") if scale is not None else max(1, round(170 / shape[2]))
    if scale > MAX_SCALE:
        raise ValueError(f"scale must be at most {MAX_SCALE} (pixels per image pixel), got {scale}")
    payload = export_decoder(model, check=check)
    weight_bytes = sum(len(layer[k]) for layer in payload["layers"] for k in ("q", "scale", "bias"))
    data = {**payload, **data, "kind": kind, "scale": scale, "caption": description}
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")     # nothing in it can end the tag
    page = (f'<div class="companion-browser-explorer" data-kind="{kind}">'
            f'<div class="cbe-fallback"><em>{html.escape(FALLBACK)}</em></div>'
            f'<script type="application/json" class="cbe-data">{blob}</script>'
            f"<script>{SCRIPT}</script></div>")
    return BrowserExplorer(page, kind, weight_bytes, payload["maxError"])
