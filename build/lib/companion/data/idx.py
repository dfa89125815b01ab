"""A small reader for the IDX format of the MNIST family (raw or gzip-compressed).

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 for
unsigned bytes, the only type the MNIST files use, and the others of the spec) and the
number of dimensions; then one big-endian uint32 per dimension; then the data, row-major.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# type code → big-endian numpy dtype, from the IDX specification
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw, detected from its bytes) into a numpy array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not valid IDX (bad magic number, unknown type code, or a
            size that does not match its header).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read (corrupt gzip?): {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes of data) "
                         f"but the file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX (gzip-compressed if ``compress`` or the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    dt = array.dtype.newbyteorder("=")
    if dt not in codes:
        raise TypeError(f"write_idx: unsupported dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError("write_idx: array must have between 1 and 255 dimensions")
    code = codes[dt]
    data = (bytes([0, 0, code, array.ndim])
            + np.asarray(array.shape, dtype=">u4").tobytes()
            + array.astype(np.dtype(IDX_TYPES[code])).tobytes())
    if compress is None:
        compress = path.suffix == ".gz"
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)
    return path
