import gzip

import numpy as np
import pytest
import torch

from companion import data
from companion.data import DatasetUnavailable, load, read_idx, write_idx


def test_mnist5k_shapes_range_and_stratified_split():
    x, y = load("mnist-5k", "train")
    xt, yt = load("mnist-5k", "test")
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.99
    assert torch.equal(torch.bincount(y), torch.full((10,), 400))
    assert torch.equal(torch.bincount(yt), torch.full((10,), 100))
    xa, _ = load("mnist-5k", "all")
    assert len(xa) == 5000
    # train and test are disjoint: no test image appears in the training set
    flat, flat_t = x.reshape(4000, -1), xt.reshape(1000, -1)
    assert torch.cdist(flat_t[:200], flat).min() > 0


def test_split_is_deterministic_and_seed_dependent():
    a, _ = load("mnist-5k", "test", seed=0)
    b, _ = load("mnist-5k", "test", seed=0)
    c, _ = load("mnist-5k", "test", seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_digits():
    x, y = load("digits", "train")
    xt, _ = load("digits", "test")
    assert x.shape[1:] == (1, 8, 8) and len(x) + len(xt) == 1797
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(y.tolist()) == set(range(10))


@pytest.mark.parametrize("name,split,msg", [
    ("mnist-50k", "train", "unknown data set"),
    ("mnist-5k", "validation", "has splits"),
    ("mnist", "all", "has splits"),
])
def test_bad_names_and_splits(name, split, msg):
    with pytest.raises(ValueError, match=msg):
        load(name, split)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        load("mnist-5k", "train", seed=-1)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), a)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == compress
    b = read_idx(path)
    assert b.shape == (2, 3, 4) and b.dtype == np.uint8 and np.array_equal(a, b)
    f = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(read_idx(write_idx(tmp_path / "f.idx", f)), f)


def test_idx_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    # header says 10 items, file holds 3
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="holds 3 bytes"):
        read_idx(tmp_path / "short")
    (tmp_path / "type").write_bytes(bytes([0, 0, 0x42, 1]) + (1).to_bytes(4, "big") + b"a")
    with pytest.raises(ValueError, match="type code"):
        read_idx(tmp_path / "type")
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError, match="corrupt"):
        read_idx(tmp_path / "x.gz")


def _write_fake_mnist(directory, n_train=12, n_test=5, raw_test=False):
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = "" if (raw_test and split == "t10k") else ".gz"
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


def test_full_mnist_from_local_idx_files(tmp_path):
    images, labels = _write_fake_mnist(tmp_path / "m", raw_test=True)
    x, y = load("mnist", "test", root=tmp_path / "m")          # raw (uncompressed) files
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0] * 255, torch.from_numpy(images).float())
    assert torch.equal(y, torch.from_numpy(labels).long())
    xtr, _ = load("mnist", "train", root=tmp_path / "m")        # .gz files
    assert xtr.shape == (12, 1, 28, 28)


def test_environment_variable_directory(tmp_path, monkeypatch):
    _write_fake_mnist(tmp_path / "fashion-mnist")
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    x, _ = load("fashion-mnist", "train")
    assert x.shape == (12, 1, 28, 28)


def test_missing_files_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    monkeypatch.setattr(data, "_search_dirs", lambda name, root: [tmp_path / name])
    with pytest.raises(DatasetUnavailable, match="download=True"):
        load("mnist", "train")


def test_mismatched_images_and_labels(tmp_path):
    d = tmp_path / "m"
    _write_fake_mnist(d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        load("mnist", "train", root=d)


def test_download_uses_sha256(tmp_path, monkeypatch):
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash))
        arr = np.zeros((2, 28, 28) if "images" in fname else 2, dtype=np.uint8)
        return str(write_idx(path / fname, arr))

    import pooch
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    monkeypatch.setattr(data, "_search_dirs", lambda name, root: [tmp_path / name])
    x, y = load("mnist", "test", download=True)
    assert x.shape == (2, 1, 28, 28)
    assert all(h.startswith("sha256:") and len(h) == 7 + 64 for _, h in calls)
    assert calls[0][0].endswith("t10k-images-idx3-ubyte.gz")


def test_describe():
    assert data.describe("fashion-mnist")["classes"][0] == "T-shirt/top"
    with pytest.raises(ValueError):
        data.describe("nope")


def test_pad_to_centres_images():
    from companion.data import pad_to

    x = torch.rand(3, 1, 28, 28)
    p = pad_to(x, 32)
    assert p.shape == (3, 1, 32, 32) and torch.equal(p[:, :, 2:30, 2:30], x) and torch.allclose(p.sum(), x.sum())
    assert pad_to(torch.rand(1, 2, 5, 7), 8).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="size"):
        pad_to(x, 27)
    with pytest.raises(ValueError, match="N, C, H, W"):
        pad_to(x[0], 32)


@pytest.mark.parametrize("name", ["mnist-5k", "digits"])
def test_loaded_data_belong_to_the_caller(name):
    """Editing what load returns, in place, changes no later load of any split."""
    from companion.data import load
    first = {split: load(name, split) for split in ("train", "test", "all")}
    for split, (x, y) in first.items():
        x.mul_(255)
        y.add_(100)
    for split, (x, y) in first.items():
        again = load(name, split)
        assert again.x.max() <= 1 and again.y.max() < 10, split


@pytest.mark.parametrize("images, labels, words", [
    (np.zeros((3, 32, 32), np.uint8), np.zeros(3, np.uint8), "28, 28"),
    (np.zeros((3, 28, 28), np.int8), np.zeros(3, np.uint8), "uint8 images"),
    (np.zeros((3, 28, 28), np.float64), np.zeros(3, np.uint8), "uint8 images"),
    (np.full((3, 28, 28), np.nan), np.zeros(3, np.uint8), "uint8 images"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, 200, 1], np.uint8), "0 … 9"),
    (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), "no examples"),
])
def test_idx_files_must_be_the_data_set_they_are_named(images, labels, words, tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", images)
    write_idx(d / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ValueError, match=words) as e:
        load("mnist", "train", root=d)
    assert "train-images-idx3-ubyte.gz" in str(e.value)
