"""Shared building blocks: one MLP and one convolutional encoder/decoder pair.

Every model of the book builds its encoder g_φ and decoder f_θ from these, so no model
carries its own copy of a layer stack. Image sizes and channel counts are parameters.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (``relu``, ``sigmoid``, ``tanh``, ``elu``, …)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _check_sizes(sizes: Sequence[int], what: str) -> None:
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ValueError(f"{what} must be positive ints, got {list(sizes)}")


class MLP(nn.Sequential):
    """Linear layers with an activation between them: in → hidden… → out.

    Args:
        in_features: size of the (flattened) input.
        hidden: sizes of the hidden layers, possibly empty (then one linear map).
        out_features: size of the output.
        act: activation after each hidden layer.
        out_act: activation after the last layer (``"identity"`` for none).

    Shapes: (B, in_features) → (B, out_features); any input of shape (B, ...) is
    flattened first.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int,
                 act: str = "relu", out_act: str = "identity") -> None:
        _check_sizes([in_features, *hidden, out_features], "MLP sizes")
        sizes = [in_features, *hidden, out_features]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            last = i == len(sizes) - 2
            layers.append(activation(out_act if last else act))
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features(x, self.in_features, "MLP", flatten=True)
        return super().forward(x)


def check_features(x, d: int, what: str, *, flatten: bool = False) -> None:
    """Raise a clear error unless ``x`` is a float tensor (B, d) with B ≥ 1 (with ``flatten``,
    any (B, ...) whose trailing dimensions hold d numbers)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{what} expects a floating-point torch.Tensor, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    width = x[0].numel() if flatten and x.dim() >= 2 else (x.shape[-1] if x.dim() == 2 else None)
    if x.dim() < 2 or len(x) == 0 or width != d:
        raise ValueError(f"{what} expected a batch (B ≥ 1) of {d} features, got shape {tuple(x.shape)}")


def _check_down(in_shape: Sequence[int], channels: Sequence[int], out: int, name: str, out_name: str):
    """The checks of a stack of stride-2 convolutions: positive sizes, at least one layer, and an
    input (C, H, W) whose sides halve that many times; returns (C, H, W)."""
    _check_sizes([*channels, out], f"{name} channels and {out_name}")
    if not channels:
        raise ValueError(f"{name} needs at least one conv layer")
    return _check_image_shape(in_shape, len(channels), f"{name}.in_shape")


def _check_image_shape(shape: Sequence[int], n_down: int, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{what} must be (channels, height, width), got {tuple(shape)}")
    _check_sizes(shape, what)
    c, h, w = shape
    step = 2 ** n_down
    if h % step or w % step:
        raise ValueError(f"{what}: height and width must be divisible by 2**{n_down} = {step} "
                         f"for {n_down} stride-2 layers, got {h}×{w}")
    return c, h, w


class ConvEncoder(nn.Module):
    """Stride-2 convolutions that halve the image each layer, then a linear map.

    Args:
        in_shape: (C, H, W) of the input; H and W divisible by 2**len(channels).
        channels: output channels of each conv layer.
        out_features: size of the output vector.
        act: activation after each conv layer.

    Shapes: (B, C, H, W) → (B, out_features).
    """

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], out_features: int,
                 act: str = "relu") -> None:
        super().__init__()
        c, h, w = _check_down(in_shape, channels, out_features, "ConvEncoder", "out_features")
        self.in_shape = (c, h, w)
        self.conv = nn.Sequential(*_down(c, channels, act))
        n = len(channels)
        self.fc = nn.Linear(channels[-1] * (h >> n) * (w >> n), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"ConvEncoder expected input (B, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(x.shape)}")
        return self.fc(self.conv(x).flatten(start_dim=1))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear map, then stride-2 transposed convs.

    Args:
        in_features: size of the code.
        out_shape: (C, H, W) of the output; H and W divisible by 2**len(channels).
        channels: channels of each transposed-conv layer's input, widest first.
        act: activation between layers; the output layer has none (logits or means).

    Shapes: (B, in_features) → (B, C, H, W).
    """

    def __init__(self, in_features: int, out_shape: Sequence[int], channels: Sequence[int],
                 act: str = "relu") -> None:
        super().__init__()
        _check_sizes([in_features, *channels], "ConvDecoder in_features and channels")
        if not channels:
            raise ValueError("ConvDecoder needs at least one transposed-conv layer")
        c_out, h, w = _check_image_shape(out_shape, len(channels), "ConvDecoder.out_shape")
        n = len(channels)
        self.start = (channels[0], h >> n, w >> n)
        self.fc = nn.Sequential(nn.Linear(in_features, channels[0] * (h >> n) * (w >> n)),
                                activation(act))
        self.deconv = nn.Sequential(*_up(channels, c_out, act))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_features(z, self.fc[0].in_features, "ConvDecoder")
        return self.deconv(self.fc(z).view(-1, *self.start))


def _down(c_in: int, channels: Sequence[int], act: str) -> list[nn.Module]:
    """Stride-2 4×4 convolutions, each halving the map, each followed by ``act``."""
    layers: list[nn.Module] = []
    for c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), activation(act)]
        c_in = c_out
    return layers


def _up(channels: Sequence[int], c_out: int, act: str) -> list[nn.Module]:
    """Stride-2 4×4 transposed convolutions, each doubling the map; ``act`` between them."""
    layers: list[nn.Module] = []
    for i, c in enumerate(channels):
        nxt = channels[i + 1] if i + 1 < len(channels) else c_out
        layers.append(nn.ConvTranspose2d(c, nxt, kernel_size=4, stride=2, padding=1))
        if i + 1 < len(channels):
            layers.append(activation(act))
    return layers


class ConvDown(nn.Module):
    """Stride-2 convolutions, then a 1×1 convolution to ``out_channels``: an image becomes a
    grid of vectors (VQ-VAE's encoder output z_e(x)).

    Shapes: (B, C, H, W) → (B, out_channels, H / 2**n, W / 2**n) for n = len(channels).
    """

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], out_channels: int,
                 act: str = "relu") -> None:
        super().__init__()
        c, h, w = _check_down(in_shape, channels, out_channels, "ConvDown", "out_channels")
        self.in_shape = (c, h, w)
        self.out_shape = (out_channels, h >> len(channels), w >> len(channels))
        self.net = nn.Sequential(*_down(c, channels, act), nn.Conv2d(channels[-1], out_channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"ConvDown expected input (B, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(x.shape)}")
        return self.net(x)


class ConvUp(nn.Module):
    """The mirror of :class:`ConvDown`: a 1×1 convolution, then stride-2 transposed convs.

    Shapes: (B, in_channels, h, w) → (B, out_channels, h · 2**n, w · 2**n); no output activation.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], out_channels: int, act: str = "relu") -> None:
        super().__init__()
        _check_sizes([in_channels, *channels, out_channels], "ConvUp channels")
        if not channels:
            raise ValueError("ConvUp needs at least one transposed-conv layer")
        self.net = nn.Sequential(nn.Conv2d(in_channels, channels[0], kernel_size=1), activation(act),
                                 *_up(channels, out_channels, act))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
