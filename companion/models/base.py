"""The contract every model of the book follows, written as three classes.

:class:`Model` is what all of them share: an ``nn.Module`` built from a config dataclass whose
fields are validated (and which a checkpoint stores), with ``forward(...)`` returning an
:class:`Output`. There are two kinds.

**An** :class:`EncoderDecoder` maps data to codes and back. ``forward(x)`` scores a batch
(the denoising family also takes ``forward(x, target)``); ``encode`` and ``decode`` are per
family:

==================================  ==============================  ==============================  ====================
family                              ``encode(x)`` returns           ``decode`` takes                ``decode`` returns
==================================  ==============================  ==============================  ====================
Autoencoder and its subclasses, PCA z = g_φ(x), a Tensor (B, m)     a Tensor (B, m)                 x' = f_θ(z), a Tensor
VAE                                 q_φ(z|x), a Distribution (B, m) codes (B, m) or q_φ(z|x)        p_θ(x|z), a Distribution
TDVAE                               beliefs p_B(z_t|b_t) (B, T, z)  states (..., z) or the beliefs  p_D(x|z), a Distribution
VQVAE                               an index grid, int64 (B, h, w)  an index grid                   x', a Tensor
VQVAE2                              :class:`Codes` (top, bottom)    Codes, or the top grid alone    x', a Tensor
==================================  ==============================  ==============================  ====================

Whatever the family, three methods give what helpers need without branching on it:

* ``code(x)``: a point code: ``encode(x)``, or the mean of a distribution, a Tensor (for a
  VQ-VAE-2, its :class:`Codes`: two index grids);
* ``decode_mean(z)``: the image (or frame) of codes: ``decode(z)``, or its mean;
* ``reconstruct(x)``: ``decode_mean(code(x))``, the reconstruction x' in data space.

``decode_mean(code(x))`` always has the shape of x. ``Output.z`` is what ``code`` would give
for the sample the loss used: the code (B, m) of an autoencoder or PCA, the sampled z (B, m) of a
VAE, the sampled states (B, T, z) of a TD-VAE, the index grid (B, h, w) of a VQ-VAE, and the
bottom grid of a VQ-VAE-2 (whose top grid is in ``encode``'s :class:`Codes`).

**A** :class:`Prior` models code grids: ``forward(grids, cond=None)`` gives the negative
log-likelihood in nats per grid (``stats["bits_per_code"]`` too), ``log_prob(grids, cond=None)``
the log-likelihood of each grid, and ``sample(n, grid_shape, ...)`` draws grids. It has no
encoder or decoder.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import torch

from companion.losses import finite_range
from companion.runtime import plain


@dataclass
class Output:
    """What ``model(x)`` returns.

    Attributes:
        loss: scalar tensor to minimise (nats per example under the reduction convention
            of :mod:`companion.losses`).
        terms: named scalar parts of the loss, e.g. ``{"recon": ..., "kl": ...}`` (before
            their weights); the trainer logs each of them.
        stats: named scalar statistics that are not parts of the loss (a codebook's
            ``perplexity``, the current ``capacity`` target, ``bits_per_code``); logged too.
        x_hat: the reconstruction x' = f_θ(z), same shape as the input. A model whose
            reconstruction costs a pass of its own may give a function of no arguments instead;
            it is called on the first read of ``x_hat`` (so that training, which never reads
            it, does not pay for it), from the parameters as they are at that moment.
        z: the code the loss used, per family (see the module's table): (B, m) for an
            autoencoder, PCA or VAE (sampled), (B, T, z) for a TD-VAE, an index grid (B, h, w)
            for a VQ-VAE and the bottom grid of a VQ-VAE-2; None for a prior.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    x_hat: torch.Tensor | None = None
    z: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.loss, torch.Tensor) or self.loss.dim() != 0:
            raise ValueError("Output.loss must be a scalar (0-dim) tensor")
        for kind in ("terms", "stats"):
            for name, value in getattr(self, kind).items():
                if not isinstance(value, torch.Tensor) or value.dim() != 0:
                    raise ValueError(f"Output.{kind}[{name!r}] must be a scalar tensor")
        clash = set(self.terms) & set(self.stats)
        if clash or "loss" in self.terms or "loss" in self.stats:
            raise ValueError(f"Output.terms and Output.stats must have distinct names other than 'loss', "
                             f"got {sorted(clash) or ['loss']}")

    def logged(self) -> dict[str, torch.Tensor]:
        """The loss, its terms and the statistics, in one dict (what the trainer records)."""
        return {"loss": self.loss, **self.terms, **self.stats}


def _read_x_hat(self: Output) -> torch.Tensor | None:
    value = self.__dict__.get("_x_hat")
    if callable(value) and not isinstance(value, torch.Tensor):
        value = self.__dict__["_x_hat"] = value()
    return value


def _write_x_hat(self: Output, value) -> None:
    self.__dict__["_x_hat"] = value


Output.x_hat = property(_read_x_hat, _write_x_hat, doc="x' (computed on first read when given as a function)")


class Model(torch.nn.Module):
    """Base of every model of the book (an :class:`EncoderDecoder` or a :class:`Prior`): built
    from its config dataclass, or from that config's fields as keyword arguments (``VAE(latent_size=16)`` is ``VAE(VAEConfig(latent_size=16))``).

    A subclass names its ``config_class``; fields a reader usually passes first may be given
    positionally when the subclass lists them in ``positional`` (``PCA(2)``). The config is
    kept as ``self.config`` and is what :func:`companion.train.save_checkpoint` stores and
    :func:`companion.train.load_checkpoint` rebuilds the model from.
    """

    config_class: type = None
    positional: tuple[str, ...] = ()

    def __init__(self, config=None, *args, **kwargs) -> None:
        super().__init__()
        cls, name = self.config_class, type(self).__name__
        if config is not None and not isinstance(config, cls) and not dataclass_like(config):
            args, config = (config, *args), None                     # positional fields, e.g. PCA(2)
        if args:
            if len(args) > len(self.positional):
                raise TypeError(f"{name} takes at most {len(self.positional)} positional field(s) "
                                f"({', '.join(self.positional) or 'none'}), got {len(args)}")
            for field_name, value in zip(self.positional, args):
                if field_name in kwargs:
                    raise TypeError(f"{name} got {field_name} both positionally and as a keyword")
                kwargs[field_name] = value
        if config is None:
            config = cls(**kwargs)
        elif kwargs:
            raise TypeError(f"pass either a {cls.__name__} or keyword arguments to {name}, not both")
        if not isinstance(config, cls):
            raise TypeError(f"{name} needs a {cls.__name__}, got {type(config).__name__}")
        self.config = config

    def check_images(self, x) -> None:
        """Raise a clear error unless ``x`` is a float batch of this model's images."""
        check_images(self, x)

    # model_dtype(model) is asked on every forward; it is cached here and forgotten whenever
    # the parameters may change dtype (.to(), .double(), .half(), load_state_dict).
    def _apply(self, fn, *args, **kwargs):
        self.__dict__.pop("_float_dtype", None)
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_float_dtype", None)
        return super().load_state_dict(*args, **kwargs)


class EncoderDecoder(Model):
    """A model with an encoder and a decoder (see the module's table for what each family's
    ``encode`` and ``decode`` give). Subclasses define ``encode`` and ``decode``; a family whose
    ``encode`` returns a distribution, or whose ``decode`` does, overrides :meth:`code` and
    :meth:`decode_mean` to take its mean."""

    def encode(self, x: torch.Tensor):
        raise NotImplementedError

    def decode(self, z):
        raise NotImplementedError

    def code(self, x: torch.Tensor):
        """A point code of ``x`` as a Tensor (what ``encode`` gives, or its mean)."""
        return self.encode(x)

    def decode_mean(self, z) -> torch.Tensor:
        """The image of codes ``z`` as a Tensor (what ``decode`` gives, or its mean)."""
        return self.decode(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x' = ``decode_mean(code(x))``, the reconstruction of ``x`` in data space (shape of x)."""
        return self.decode_mean(self.code(x))


class Prior(Model):
    """A model of code grids (PixelCNN, PixelSNAIL): ``forward(grids, cond=None)`` → negative
    log-likelihood in nats per grid; :meth:`log_prob` and ``sample(n, grid_shape, ...)``."""

    def log_prob(self, grids: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


def plain_fields(config, one_tuple: tuple[str, ...] = ()) -> None:
    """Make a config's fields plain Python before they are checked: NumPy and 0-d tensor
    scalars (alone or inside a tuple) become ints, floats or bools; a field whose default is a
    tuple takes a list or tuple, or one int where its name is in ``one_tuple`` (``hidden=256``
    is ``hidden=(256,)``), and refuses anything else with the shape it expects."""
    from dataclasses import MISSING

    if not dataclass_like(config):
        raise TypeError(f"plain_fields takes a model's config dataclass, got {type(config).__name__}")
    for f in fields(config):
        value = plain(getattr(config, f.name))
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        if isinstance(default, tuple):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and f.name in one_tuple:
                value = (value,)
            elif isinstance(value, (list, tuple)):
                value = tuple(plain(v) for v in value)
            elif not (value is None and f.name == "image_shape"):
                raise TypeError(f"{type(config).__name__}.{f.name} expects a tuple of ints such as {default}, "
                                f"got {value!r}")
        setattr(config, f.name, value)


def dataclass_like(obj) -> bool:
    """True for a dataclass instance (a config of some model)."""
    import dataclasses

    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters (or, failing those, its buffers) live; the CPU for a model
    with neither. Helpers that take a model move each batch there and return CPU results."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a model (a torch nn.Module), got {type(model).__name__}")
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def device_of(f) -> torch.device:
    """The device of a model, or of the model a bound method such as ``model.decode`` belongs
    to; the CPU for any other callable."""
    if not callable(f):
        raise TypeError(f"device_of takes a model or a method of one (a callable), got {type(f).__name__}")
    owner = f if isinstance(f, torch.nn.Module) else getattr(f, "__self__", None)
    return model_device(owner) if isinstance(owner, torch.nn.Module) else torch.device("cpu")


def image_decoder(decode):
    """Codes → images as Tensors, from a model with a decoder, from its ``decode`` method (a
    VAE's returns a distribution: its ``decode_mean`` is used instead), or from any function
    that already returns images."""
    if isinstance(decode, EncoderDecoder):
        return decode.decode_mean
    owner = getattr(decode, "__self__", None)
    if isinstance(owner, EncoderDecoder) and getattr(decode, "__func__", None) is type(owner).decode:
        return owner.decode_mean
    if not callable(decode):
        raise TypeError(f"decode must be a model with a decoder or a function codes → images, "
                        f"got {type(decode).__name__}")
    return decode


def positive_int(obj, name: str) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``getattr(obj, name)`` is an int ≥ 1."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{type(obj).__name__}.{name} must be a positive int, got {value!r}")


def choice(obj, name: str, options: tuple[str, ...]) -> None:
    """Raise a ``ValueError`` unless ``getattr(obj, name)`` is one of ``options``."""
    value = getattr(obj, name)
    if value not in options:
        raise ValueError(f"{type(obj).__name__}.{name} must be one of {options}, got {value!r}")


def config_dict(config) -> dict:
    """A config dataclass as a plain dict (tuples become lists), for checkpoints and JSON."""
    if not dataclass_like(config):
        raise TypeError(f"expected a model's config dataclass instance, got {type(config).__name__}")
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def image_shape(obj, name: str = "image_shape") -> None:
    """Make ``getattr(obj, name)`` a tuple and raise unless it is (C, H, W) of positive ints."""
    value = tuple(getattr(obj, name))
    setattr(obj, name, value)
    if len(value) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in value):
        raise ValueError(f"{type(obj).__name__}.{name} must be (C, H, W) of positive ints, got {value}")


def finite_at_least(obj, name: str, low: float = 0.0) -> None:
    """Raise unless ``getattr(obj, name)`` is a finite number ≥ ``low``."""
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v < float("inf"):
        raise ValueError(f"{type(obj).__name__}.{name} must be a finite number ≥ {low:g}, got {v!r}")


def in_open_unit_interval(obj, name: str) -> None:
    """Raise unless ``getattr(obj, name)`` lies in (0, 1), like an EMA decay."""
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
        raise ValueError(f"{type(obj).__name__}.{name} must lie in (0, 1), got {v!r}")


def check_codes(model, z, width: int) -> None:
    """The input check of a decoder: codes (B, ``width``), a float tensor of the model's dtype,
    B ≥ 1, finite. Codes that require grad come from the model's own training step (fit's
    guard watches those), so only their shape and dtype are checked, and training pays nothing."""
    name = f"{type(model).__name__}.decode"
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name} expects codes as a torch.Tensor (B, {width}), got {type(z).__name__}: "
                        f"convert with torch.as_tensor(codes, dtype=torch.float32)")
    if z.requires_grad or torch._C._functorch.is_functorch_wrapped_tensor(z):
        if z.dim() != 2 or z.shape[1] != width:
            raise ValueError(f"{name} expected codes of shape (B, {width}), got {tuple(z.shape)}")
        return
    check_input(z, name=name, shape=(width,), dtype=model_dtype(model))


def check_grid(model, idx, shape: tuple[int, int], num_codes: int, what: str = "codes") -> None:
    """The input check of a vector-quantised decoder: an int64 tensor (B, h, w) of the grid size
    ``shape`` the model's encoder makes, with indices in 0 … ``num_codes`` − 1."""
    name = f"{type(model).__name__}.decode"
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} expects {what} as an int64 torch.Tensor (B, {shape[0]}, {shape[1]}), got "
                        f"{type(idx).__name__}")
    if idx.dim() != 3 or idx.dtype != torch.long:
        raise ValueError(f"{name}: {what} must be (B, h, w) int64, got {tuple(idx.shape)} {idx.dtype}")
    if tuple(idx.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: {what} must be grids of {shape[0]}×{shape[1]} (what this model's encoder makes), "
                         f"got {idx.shape[1]}×{idx.shape[2]}")
    if idx.numel() and (idx.min() < 0 or idx.max() >= num_codes):
        raise ValueError(f"{name}: {what} must lie in 0…{num_codes - 1}")


def check_images(model, x) -> None:
    """The input check of the book's image models: :func:`check_input` with the model's image
    shape and dtype, and [0, 1] when its likelihood is Bernoulli. (A model with a sigmoid
    output checks its reconstruction targets instead: its encoder may take any real input.)"""
    cfg = model.config
    unit = "Bernoulli decoder" if getattr(cfg, "likelihood", None) == "bernoulli" else None
    check_input(x, name=type(model).__name__, shape=tuple(cfg.image_shape), dtype=model_dtype(model), unit=unit)


#: The reconstruction targets a Gaussian-likelihood image model accepts: images in [0, 1], with
#: room for centred or slightly noisy ones (the Bernoulli models take [0, 1] exactly). Its
#: encoder takes any finite input, so that a denoiser reads images corrupted by strong noise.
IMAGE_SPAN = (-1.0, 2.0)


def check_target_span(model, target: torch.Tensor) -> None:
    """Refuse reconstruction targets outside :data:`IMAGE_SPAN` (images stored as 0…255, say).
    A batch that ``fit`` cut carries its range, so training pays no extra pass."""
    lo, hi = finite_range(target, f"the target of {type(model).__name__}")
    if lo < IMAGE_SPAN[0] or hi > IMAGE_SPAN[1]:
        raise ValueError(f"{type(model).__name__} reconstructs images in [0, 1] (targets within "
                         f"[{IMAGE_SPAN[0]:g}, {IMAGE_SPAN[1]:g}]), got min {lo:.3g}, max {hi:.3g}: "
                         f"divide 0…255 images by 255")


def check_input(x, *, name: str, shape: tuple, dtype: torch.dtype, unit: str | None = None,
                lead: tuple[str, ...] = ("B",)) -> tuple[float, float]:
    """The one input check of every model. ``x`` must be

    * a torch.Tensor of the model's floating dtype ``dtype``: float32 unless the model was
      converted (``model.double()``). Other dtypes are refused, not converted, so that a
      float64 array from NumPy neither doubles the cost nor changes the numbers unseen:
      call ``x.float()``;
    * of shape (*lead, *shape), with a batch B ≥ 1;
    * finite (no NaN or inf);
    * in [0, 1] when ``unit`` names why (a Bernoulli decoder, a sigmoid output): images stored
      as 0…255 must be divided by 255 first.

    Inside ``torch.func`` transforms (``vmap``, ``jacrev``) only the dtype and shape are checked:
    a transform cannot branch on values. Returns the input's (min, max).
    """
    want = f"({', '.join(lead)}, {', '.join(map(str, shape))})"
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point torch.Tensor {want}, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.dtype != dtype:
        raise TypeError(f"{name} expects {dtype} inputs (the dtype of its parameters), got {x.dtype}: "
                        f"convert with x.to({dtype})")
    if x.dim() != len(lead) + len(shape) or tuple(x.shape[len(lead):]) != tuple(shape):
        raise ValueError(f"{name} expected input of shape {want}, got {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError(f"{name} got an empty batch (B = 0): expected at least one example")
    if torch._C._functorch.is_functorch_wrapped_tensor(x):
        return 0.0, 0.0  # inside torch.func (vmap, jacrev): values cannot be branched on; the caller's call checked them
    lo, hi = finite_range(x, f"the input of {name}")
    if unit is not None and (lo < 0 or hi > 1):
        raise ValueError(f"the {unit} of {name} needs inputs in [0, 1] (got min {lo:.3g}, "
                         f"max {hi:.3g}; divide 0…255 images by 255)")
    return lo, hi


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a model's first floating parameter or buffer (float32 if none)."""
    cached = getattr(model, "__dict__", {}).get("_float_dtype")
    if cached is not None:
        return cached
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a model (a torch nn.Module), got {type(model).__name__}")
    dtype = next((t.dtype for t in itertools.chain(model.parameters(), model.buffers()) if t.is_floating_point()),
                 torch.float32)
    if isinstance(model, Model):
        model.__dict__["_float_dtype"] = dtype
    return dtype
