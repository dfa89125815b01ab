"""Data sets of the book, offline first.

>>> from companion.data import load
>>> x, y = load("mnist-5k", "train")      # (4000, 1, 28, 28) float32 in [0, 1], (4000,) int64

Every loader returns float32 image tensors of shape (N, C, H, W) with values in [0, 1] and
int64 labels, on the CPU, deterministic given ``seed``.

=================  =========================================================================
``mnist-5k``       5,000 real MNIST digits (500 per class) that ship inside this package
                   (``mnist5k.npz``, 0.8 MB; see ``DATA_NOTICE.md``); a stratified
                   4,000 / 1,000 train / test split fixed by ``seed``.
``digits``         scikit-learn's 1,797 8×8 digits (values 0–16 scaled to [0, 1]); a
                   stratified 80 / 20 split fixed by ``seed``.
``mnist``          full MNIST, 60,000 / 10,000, from IDX files (see below).
``fashion-mnist``  full Fashion-MNIST, 60,000 / 10,000, from IDX files.
=================  =========================================================================

Procedural data with known generative factors: :class:`companion.data.dsprites.DSprites`
draws any of the 737,280 dSprites images (shape, scale, orientation, x, y) on demand, and
:func:`companion.data.superposition.superposition` makes sparse features in superposition
with known directions (chapter 11).

The IDX data sets are looked for, in order, in ``root`` (an argument), ``$COMPANION_DATA/<name>``,
``~/.cache/companion/<name>`` and ``/usr/share/datasets/<name>`` (where Debian's
``dataset-fashion-mnist`` package puts Fashion-MNIST). With ``download=True`` missing files
are fetched with pooch (the ``download`` extra; the README says how to install it) and checked against their
SHA-256 hashes.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from companion.data.dsprites import DSprites
from companion.data.superposition import Superposition, superposition
from companion.data.idx import read_idx, write_idx
from companion.runtime import check_seed

__all__ = ["DATASETS", "DSprites", "Superposition", "superposition", "Split", "load", "load_first", "on_disk", "pad_to", "read_idx", "write_idx", "describe"]


class Split(NamedTuple):
    """One split of a data set: images ``x`` (N, C, H, W) float32 in [0, 1], labels ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor


class DatasetUnavailable(FileNotFoundError):
    """The files of a data set are neither on this machine nor allowed to be downloaded."""


#: The 5,000 MNIST digits shipped inside the package (credits in DATA_NOTICE.md).
MNIST5K_FILE = "mnist5k.npz"

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# Download sources and the SHA-256 of each original file.
REMOTE = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }),
}

DATASETS = {
    "mnist-5k": dict(shape=(1, 28, 28), classes=[str(i) for i in range(10)], splits=("train", "test", "all"),
                     source="5,000 MNIST digits (LeCun, Cortes & Burges), shipped in companion/data/mnist5k.npz"),
    "digits": dict(shape=(1, 8, 8), classes=[str(i) for i in range(10)], splits=("train", "test", "all"),
                   source="scikit-learn's 8×8 optical digits (UCI)"),
    "mnist": dict(shape=(1, 28, 28), classes=[str(i) for i in range(10)], splits=("train", "test"),
                  source="MNIST IDX files"),
    "fashion-mnist": dict(shape=(1, 28, 28), splits=("train", "test"), source="Fashion-MNIST IDX files",
                          classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                   "Shirt", "Sneaker", "Bag", "Ankle boot"]),
}


def describe(name: str) -> dict:
    """Shape, class names, splits and source of a data set."""
    _check_name(name)
    return dict(DATASETS[name])


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")


def load(name: str, split: str = "train", *, seed: int = 0, root: str | Path | None = None,
         download: bool = False) -> Split:
    """Load one split of a data set as ``Split(x, y)``.

    Args:
        name: one of ``mnist-5k``, ``digits``, ``mnist``, ``fashion-mnist``.
        split: ``"train"``, ``"test"`` or (for the small sets) ``"all"``.
        seed: fixes the stratified train/test split of the small sets; the full sets have a
            standard split and ignore it.
        root: a directory holding the IDX files (full sets only).
        download: allow fetching missing IDX files (checked by SHA-256).

    Raises:
        ValueError: unknown name or split.
        DatasetUnavailable: the files are not found and ``download`` is False.
    """
    seed = check_seed(seed)
    _check_name(name)
    splits = DATASETS[name]["splits"]
    if split not in splits:
        raise ValueError(f"data set {name!r} has splits {splits}, got split={split!r}")
    if name in ("mnist-5k", "digits"):
        x, y = _mnist5k_arrays() if name == "mnist-5k" else _digits_arrays()
        if split == "all":
            x, y = x.copy(), y.copy()                         # the cache stays the cache: the caller owns these
        else:                                                 # (fancy indexing copies already)
            idx = _stratified_split(y, test_fraction=0.2, seed=seed)[split]
            x, y = x[idx], y[idx]
    else:
        x, y = _idx_arrays(name, split, root, download)
    return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y)))


def load_first(names=("mnist",), *, fallback: str = "mnist-5k", n_train: int | None = None,
               n_test: int | None = None) -> tuple[Split, Split]:
    """(train, test) of the first data set in ``names`` whose files are on this machine, else of
    ``fallback`` (saying so when ``names`` did not start with it); each split cut to its first
    ``n_train`` / ``n_test`` examples when given. For budgets that ask for full MNIST where it
    is present and run on the shipped digits anywhere."""
    if isinstance(names, str):
        names = (names,)
    for name in names:
        try:
            train, test = load(name, "train"), load(name, "test")
            break
        except DatasetUnavailable:
            continue
    else:
        if tuple(names) != (fallback,):
            print(f"none of {', '.join(names)} is on this machine: using {fallback}")
        train, test = load(fallback, "train"), load(fallback, "test")
    for n, label in ((n_train, "n_train"), (n_test, "n_test")):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"{label} must be a positive int or None, got {n!r}")
    def cut(s: Split, n: int | None) -> Split:          # a random subset (the files may be sorted by class)
        if n is None or n >= len(s.x):
            return s
        keep = torch.randperm(len(s.x), generator=torch.Generator().manual_seed(0))[:n]
        return Split(s.x[keep], s.y[keep])

    return cut(train, n_train), cut(test, n_test)


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) centred on a size×size canvas of zeros (28×28 digits → 32×32, say,
    for models that halve the image three times)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"pad_to expects images (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < max(x.shape[2:]):
        raise ValueError(f"size must be an int ≥ the image's height and width {tuple(x.shape[2:])}, got {size!r}")
    top, left = (size - x.shape[2]) // 2, (size - x.shape[3]) // 2
    return torch.nn.functional.pad(x, (left, size - x.shape[3] - left, top, size - x.shape[2] - top))


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of a split that keeps the class proportions exactly, shuffled by ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits that ship with the package: uint8 images (5000, 28, 28), labels (5000,)."""
    from importlib.resources import files

    with files("companion.data").joinpath(MNIST5K_FILE).open("rb") as f, np.load(f) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    return _read_only((images[:, None] / 255.0).astype(np.float32), labels.astype(np.int64))


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _read_only((d.images[:, None] / 16.0).astype(np.float32), d.target.astype(np.int64))


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The process-wide cached arrays, frozen: :func:`load` hands out copies, and an edit of
    the cache itself would raise instead of changing every later load."""
    for a in arrays:
        a.setflags(write=False)
    return arrays


def on_disk() -> dict[str, list[str]]:
    """The IDX files of each online data set that are on this machine, as paths (what
    :func:`load_first` will pick up); empty lists where a data set is missing."""
    return {name: [str(f) for split in IDX_FILES.values() for n in split
                   if (f := _find(n, _search_dirs(name, None))) is not None] for name in REMOTE}


def _search_dirs(name: str, root: str | Path | None) -> list[Path]:
    """Where IDX files are looked for; downloads go to the first of these."""
    dirs = []
    if root is not None:
        dirs.append(Path(root))
    if os.environ.get("COMPANION_DATA"):
        dirs.append(Path(os.environ["COMPANION_DATA"]) / name)
    dirs += [Path.home() / ".cache" / "companion" / name, Path("/usr/share/datasets") / name]
    return dirs


def _find(filename: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for candidate in (d / filename, d / filename.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
    return None


def _idx_arrays(name: str, split: str, root, download: bool) -> tuple[np.ndarray, np.ndarray]:
    dirs = _search_dirs(name, root)
    paths = []
    for filename in IDX_FILES[split]:
        path = _find(filename, dirs)
        if path is None:
            if not download:
                raise DatasetUnavailable(
                    f"{name}: {filename} not found in {', '.join(map(str, dirs))}. Put the IDX "
                    f"files (.gz or raw) in one of these directories, pass root=..., or call "
                    f"load({name!r}, {split!r}, download=True) on a machine with network access."
                    + (" On Debian: apt-get install dataset-fashion-mnist." if name == "fashion-mnist" else ""))
            path = _download(name, filename, dirs[0])
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    _check_idx(name, paths, images, labels)
    x = (images[:, None].astype(np.float32) / 255.0)
    return x, labels.astype(np.int64)


def _check_idx(name: str, paths: list[Path], images: np.ndarray, labels: np.ndarray) -> None:
    """Refuse IDX files that are not the data set they are named after: (N, 28, 28) uint8 images
    with N ≥ 1 and as many uint8 labels in 0 … 9."""
    where = f"{name} ({paths[0]}, {paths[1]})"
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{where}: expected (N, 28, 28) uint8 images, got {images.shape} {images.dtype}")
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype != np.uint8:
        raise ValueError(f"{where}: images and labels do not match: expected {len(images)} uint8 labels, "
                         f"got {labels.shape} {labels.dtype}")
    if len(images) == 0:
        raise ValueError(f"{where}: the files hold no examples")
    if labels.max() > 9:
        raise ValueError(f"{where}: labels must lie in 0 … 9, found {int(labels.max())}")


def _download(name: str, filename: str, directory: Path) -> Path:
    try:
        import pooch
    except ImportError as e:
        raise DatasetUnavailable(f"downloading {name} needs pooch: pip install 'companion[download]'") from e

    base, hashes = REMOTE[name]
    directory.mkdir(parents=True, exist_ok=True)
    return Path(pooch.retrieve(base + filename, known_hash="sha256:" + hashes[filename],
                               fname=filename, path=directory, progressbar=False))
