"""companion: the PyTorch package behind the executable textbook on autoencoders.

The book's chapters import everything they show from here, so the code on the page is the
code that runs. Its layers, from the bottom of the dependency graph up: a module imports
only from its own layer and the layers listed before it (``tests/test_layers.py`` keeps it
so).

- :mod:`companion.runtime`   seeds, devices and random streams, decided in one place
- :mod:`companion.data`      offline data sets and IDX loaders
- :mod:`companion.nn`        shared building blocks (MLP, ConvEncoder, ConvDecoder)
- :mod:`companion.losses`    objectives as pure functions of tensors
- :mod:`companion.models`    one module per model family: encoder-decoders and priors (the contract is in :mod:`companion.models.base`)
- :mod:`companion.metrics`   evaluation (reconstruction error, subspace angles, probes)
- :mod:`companion.viz`       plots, diagrams and latent-space widgets
- :mod:`companion.train`     :func:`fit`, the one training loop, and checkpoints
- :mod:`companion.exercises` checkers for the chapters' exercises
- :mod:`companion.experiments` each chapter's experiment (budgets, ``run``, references, claims) and the registry behind ``python -m companion reproduce`` (the contract is in :mod:`companion.experiments.core`)
"""
from __future__ import annotations

from companion.models.base import Output
from companion.runtime import get_device, seed_everything

__version__ = "0.1.0"

__all__ = ["Output", "__version__", "get_device", "seed_everything"]
