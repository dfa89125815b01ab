"""The bottom of the package: seeds, devices and random streams, decided in one place.

* :func:`check_seed` is the one seed validator: a non-negative ``int`` (NumPy integers too).
* :func:`seed_everything` seeds Python, NumPy and PyTorch.
* :func:`get_device` resolves a device name once, at an entry point (the CLI, an experiment's
  ``run``, :func:`companion.train.fit`). ``None`` never reaches it: everywhere in the package
  ``device=None`` means *leave things where they are*: ``fit`` trains where the model's
  parameters are, and an experiment's models, built on the CPU, stay there.
* :func:`drawing_from` makes code that samples with PyTorch's global generator draw from a
  ``torch.Generator`` instead, leaving the global one untouched; evaluation that samples takes a
  generator this way, so that nothing has to reseed before evaluating.
"""
from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["check_seed", "check_writable", "drawing_from", "plain", "get_device", "preserved_rngs", "seed_everything"]


def plain(value):
    """A NumPy scalar or a 0-d tensor as the Python int, float or bool it holds; anything else
    as it is. The validators call it first, so that ``np.int64(4)`` is accepted wherever 4 is."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad:
        return value.item()
    return value


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an ``int``; a ``TypeError``/``ValueError`` unless it is a non-negative integer
    (a Python or NumPy integer, not a bool)."""
    seed = plain(seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{name} must be a non-negative int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return int(seed)


def check_count(name: str, value, low: int = 1) -> int:
    """``value`` as an ``int``; a ``ValueError`` naming ``name`` unless it is an integer ≥ ``low``
    (a Python or NumPy integer, not a bool)."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
    return int(value)


def check_writable(path, what: str = "path") -> Path:
    """``path`` as a Path, once it is known that a file can be written there: a ``TypeError``
    unless it is a str or a path, a ``ValueError`` if it is a folder or its nearest existing
    folder is not writable. Called before any work, so that a long run never ends in an
    unwritable path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or a Path, got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder: give a file path")
    parent = next((q for q in (p.parent, *p.parent.parents) if q.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{what} {p} cannot be written (no write access to {parent})")
    return p


@contextlib.contextmanager
def drawing_from(generator: torch.Generator | None, device: torch.device | str = "cpu"):
    """Inside the block, PyTorch's global CPU generator continues ``generator``'s stream, and
    ``generator`` is advanced by what the block drew; outside it the global generators are as
    they were. With ``generator=None`` the block draws from the global generator as usual.

    Code that samples with ``torch.randn_like`` or ``Distribution.sample`` (a VAE's forward, the
    importance-weighted bound) cannot take a generator itself; this gives it one. On the CPU
    the draws are exactly those that ``torch.manual_seed`` with the generator's seed would
    give. On a CUDA device, ``device``'s own generator is seeded for the block with one draw
    from ``generator`` (so there ``generator`` advances by one draw more). Other accelerators
    (MPS) are refused rather than left unseeded.
    """
    if generator is None:
        yield
        return
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise TypeError(f"generator must be a CPU torch.Generator, got {generator!r}")
    device = torch.device(device)
    if device.type not in ("cpu", "cuda", "meta"):
        raise ValueError(f"drawing_from supports the CPU and CUDA devices, got {device}")
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.set_rng_state(generator.get_state())
        if cuda:
            torch.cuda.default_generators[cuda[0]].manual_seed(int(torch.randint(2**62, (1,))))
        try:
            yield
        finally:
            generator.set_state(torch.get_rng_state())


@contextlib.contextmanager
def preserved_rngs(device: torch.device | str = "cpu"):
    """Inside the block anything may reseed or draw; afterwards Python's, NumPy's and
    PyTorch's CPU generators, and ``device``'s when it is a GPU, are back where they were. For
    work added to a run that must not move any number computed after it."""
    state = random.getstate(), np.random.get_state(), os.environ.get("PYTHONHASHSEED")
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])
            if state[2] is None:
                os.environ.pop("PYTHONHASHSEED", None)
            else:
                os.environ["PYTHONHASHSEED"] = state[2]


def seed_everything(seed: int = 0, *, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and PyTorch so that a run repeats exactly on the same machine.

    Args:
        seed: a non-negative integer.
        threads: if given, also fix the number of CPU threads PyTorch uses (results of
            floating-point reductions can depend on it).

    Returns:
        A ``torch.Generator`` seeded with ``seed``, for code that wants its own stream.
    """
    seed = check_seed(seed)
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        torch.set_num_threads(threads)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | torch.device = "auto") -> torch.device:
    """The device to train on.

    Args:
        prefer: ``"auto"`` (the default): CUDA if a GPU is visible, then Apple's MPS, else the
            CPU. Or a device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"meta"``),
            which must be usable here.

    Raises:
        ValueError: an unknown device name, or a device this machine does not have (for
            example ``"cuda"`` with a CPU-only PyTorch build), said before any training starts.
        TypeError: ``None``, which in this package means "leave things where they are" and is
            decided by the caller (see the module's docstring).
    """
    if prefer is None:
        raise TypeError("get_device takes 'auto' or a device name; device=None means 'leave things where they "
                        "are' and is the caller's to decide (fit: the model's device; a run: the CPU)")
    if isinstance(prefer, str) and prefer.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {type(prefer).__name__}")
    if isinstance(prefer, str):
        prefer = prefer.strip().lower()                     # "CPU", "Cuda:0" are names too
    try:
        device = torch.device(prefer)
    except RuntimeError as e:
        raise ValueError(f"unknown device {prefer!r}: expected 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'meta'") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(prefer)!r} was asked for, but PyTorch sees no CUDA GPU here "
                             f"(torch {torch.__version__}, torch.cuda.is_available() is False); "
                             "use 'auto' or 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(prefer)!r} was asked for, but only {torch.cuda.device_count()} "
                             "CUDA device(s) are visible")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                       and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(prefer)!r} was asked for, but Apple's MPS is not available here; "
                         "use 'auto' or 'cpu'")
    elif device.type not in ("cpu", "cuda", "mps", "meta"):
        raise ValueError(f"unsupported device {str(prefer)!r}: expected 'auto', 'cpu', 'cuda', 'mps' or 'meta'")
    return device
