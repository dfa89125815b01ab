"""companion: the PyTorch package behind the executable textbook on autoencoders.

The book's chapters import everything they show from here, so the code on the page is the
code that runs. Submodules, from the bottom of the dependency graph up:

- :mod:`companion.data`      offline data sets and IDX loaders
- :mod:`companion.nn`        shared building blocks (MLP, ConvEncoder, ConvDecoder)
- :mod:`companion.losses`    objectives as pure functions of tensors
- :mod:`companion.models`    one module per model family, all returning :class:`Output`
- :mod:`companion.train`     :func:`fit`, the one training loop, and checkpoints
- :mod:`companion.metrics`   evaluation (reconstruction error, subspace angles, probes)
- :mod:`companion.viz`       plots and latent-space widgets
- :mod:`companion.exercises` checkers for the chapters' exercises
- :mod:`companion.experiments` each chapter's experiment (budgets, ``run``, references, claims) and the registry behind ``python -m companion reproduce``
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from companion.models.base import Output

__version__ = "0.1.0"

__all__ = ["Output", "__version__", "get_device", "seed_everything"]


def seed_everything(seed: int = 0, *, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and PyTorch so that a run repeats exactly on the same machine.

    Args:
        seed: a non-negative integer.
        threads: if given, also fix the number of CPU threads PyTorch uses (results of
            floating-point reductions can depend on it).

    Returns:
        A ``torch.Generator`` seeded with ``seed``, for code that wants its own stream.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    seed = int(seed)
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        torch.set_num_threads(threads)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to train on.

    Args:
        prefer: ``None`` or ``"auto"``: CUDA if a GPU is visible, then Apple's MPS, else the
            CPU. Or a device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"meta"``),
            which must be usable here.

    Raises:
        ValueError: an unknown device name, or a device this machine does not have (for
            example ``"cuda"`` with a CPU-only PyTorch build), said before any training starts.
    """
    if prefer is None or (isinstance(prefer, str) and prefer.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {type(prefer).__name__}")
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
