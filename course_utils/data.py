"""Image data sets as float tensors: scikit-learn's bundled digits, and MNIST from local files.

Used by notebooks 06 (VAE) and 07 (Gumbel-softmax), which train on
:func:`load_digits_tensor`: 1,797 handwritten digits of 8×8 pixels that ship
with scikit-learn, so nothing is ever downloaded. :func:`load_mnist` reads the
28×28 MNIST digits for readers who already have them on disk (the exercises
suggest it); it never downloads anything either.

Both return a :class:`DataSplit`::

    x_train  (N_train, D) float32 in [0, 1]   D = 64 (digits) or 784 (MNIST); (N, H, W) with flatten=False
    y_train  (N_train,)   int64 class labels 0..9
    x_test   (N_test, D)  float32 in [0, 1]
    y_test   (N_test,)    int64
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["DataSplit", "load_digits_tensor", "load_mnist", "read_idx"]


class DataSplit(NamedTuple):
    """A train/test split of images and labels (unpacks as ``x_train, y_train, x_test, y_test``)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of one image, whether the images are stored flat or not."""
        if self.x_train.dim() == 3:
            return tuple(self.x_train.shape[1:])
        side = math.isqrt(self.x_train.shape[1])
        if side * side != self.x_train.shape[1]:
            raise ValueError(f"{self.x_train.shape[1]} pixels do not form a square image; keep the shape yourself")
        return (side, side)


def _check_flags(binarize: bool, flatten: bool) -> None:
    for name, value in (("binarize", binarize), ("flatten", flatten)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")


def _finish(images: np.ndarray, labels: np.ndarray, binarize: bool, flatten: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled images in [0, 1] (or {0, 1}) as float32, labels as int64."""
    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32)
    if binarize:
        x = (x > 0.5).to(torch.float32)  # pixel on when more than half-inked
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x, torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def load_digits_tensor(
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    binarize: bool = False,
    flatten: bool = True,
) -> DataSplit:
    """scikit-learn's 8×8 handwritten digits, scaled to [0, 1], split into train and test.

    Explained in notebook 06. The 1,797 images come with scikit-learn (no
    download). Grey levels 0..16 are divided by 16; ``binarize=True`` then
    thresholds at 0.5 so that each pixel is a 0/1 outcome for a Bernoulli
    likelihood. The split is stratified by class and fixed by ``seed``.

    Returns a :class:`DataSplit` with ``x`` of shape ``(N, 64)`` (``(N, 8, 8)``
    with ``flatten=False``), float32, and ``y`` of shape ``(N,)``, int64.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_flags(binarize, flatten)
    digits = load_digits()
    images = digits.images / 16.0  # (1797, 8, 8), grey levels 0..16 -> [0, 1]
    idx_train, idx_test = train_test_split(
        np.arange(len(images)), test_size=test_fraction, random_state=int(seed), stratify=digits.target
    )
    x_train, y_train = _finish(images[idx_train], digits.target[idx_train], binarize, flatten)
    x_test, y_test = _finish(images[idx_test], digits.target[idx_test], binarize, flatten)
    return DataSplit(x_train, y_train, x_test, y_test)


# --- MNIST from local files ----------------------------------------------------------------------

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Each split's file names, as distributed by LeCun et al. (dashes) and by some mirrors (a dot before "idx").
_IDX_STEMS = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or ``.gz``) into a NumPy array of the shape its header gives.

    The IDX header is a 4-byte magic number ``0x00 0x00 <type> <ndim>``
    followed by ``ndim`` big-endian uint32 sizes; the data follows, row-major.
    A header that does not parse, or data of the wrong length, raises a
    ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # e.g. a file named .gz that is not gzip data
        raise ValueError(f"{path}: cannot read the file ({err}); is it a valid (gzipped) IDX file?") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX header (4-byte magic number)")
    zero1, zero2, type_code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: malformed IDX header (magic bytes {raw[:4].hex()}); expected 00 00 <type> <ndim> with "
            f"type one of {sorted(hex(t) for t in _IDX_DTYPES)}. Was the file renamed or decompressed wrongly?"
        )
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise ValueError(f"{path}: the header promises {ndim} dimensions but the file ends inside the header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(
            f"{path}: the header gives shape {shape} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header_end} bytes after the header; the file is truncated or not IDX"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, key: str) -> Path | None:
    for stem in _IDX_STEMS[key]:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    if not zipfile.is_zipfile(path):  # np.load would otherwise try to unpickle it
        raise ValueError(f"{path}: not a readable .npz file (an .npz is a zip archive of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _NPZ_KEYS if k not in data.files]
            if missing:
                raise ValueError(
                    f"{path}: an MNIST .npz needs the arrays {list(_NPZ_KEYS)} (as in Keras' mnist.npz); "
                    f"missing {missing}, found {data.files}"
                )
            return tuple(data[k] for k in _NPZ_KEYS)
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None


def _check_pair(images: np.ndarray, labels: np.ndarray, split: str, where: Path) -> None:
    if images.ndim != 3:
        raise ValueError(f"{where}: {split} images should have shape (N, H, W), got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{where}: {len(images)} {split} images but labels of shape {labels.shape}")


def load_mnist(path: str | Path, *, binarize: bool = False, flatten: bool = True) -> DataSplit:
    """MNIST (or any data set in its file formats) from files you already have; never downloads.

    Explained in notebook 06 (exercises). ``path`` is either

    - a folder with the four IDX files ``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
      ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``; the mirror spelling
      ``train-images.idx3-ubyte`` works too), or
    - an ``.npz`` file holding ``x_train, y_train, x_test, y_test`` such as
      Keras' ``mnist.npz``, or a folder containing ``mnist.npz``.

    IDX files win if a folder holds both. Pixel values 0..255 are scaled to
    [0, 1]; ``binarize=True`` thresholds at 0.5. Returns a :class:`DataSplit`
    with ``x`` of shape ``(N, H·W)`` (``(N, H, W)`` with ``flatten=False``).
    """
    _check_flags(binarize, flatten)
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist. Point load_mnist at a folder holding the MNIST IDX files "
            "(train-images-idx3-ubyte[.gz] and the other three) or at an mnist.npz; this course never downloads data."
        )
    if path.is_dir():
        found = {key: _find_idx(path, key) for key in _IDX_STEMS}
        if all(found.values()):
            arrays = tuple(read_idx(found[k]) for k in ("train_images", "train_labels", "test_images", "test_labels"))
        elif (path / "mnist.npz").is_file():
            arrays = _load_npz(path / "mnist.npz")
        else:
            have = [key for key, p in found.items() if p]
            lacking = [_IDX_STEMS[key][0] + "[.gz]" for key, p in found.items() if not p]
            raise FileNotFoundError(
                f"{path} holds neither the four MNIST IDX files nor mnist.npz "
                f"(found {have or 'no IDX file'}; missing {lacking})"
            )
        where = path
    elif path.suffix == ".npz":
        arrays, where = _load_npz(path), path
    else:
        raise ValueError(f"{path} is a file but not an .npz; give the folder that holds the IDX files instead")

    x_train, y_train, x_test, y_test = arrays
    _check_pair(x_train, y_train, "training", where)
    _check_pair(x_test, y_test, "test", where)
    scale = 255.0 if np.issubdtype(x_train.dtype, np.integer) else 1.0
    if x_train.size and (x_train.min() < 0 or x_train.max() > scale):
        raise ValueError(f"{where}: pixel values outside [0, {scale:g}]; expected 8-bit grey levels")
    x_tr, y_tr = _finish(x_train / scale, y_train, binarize, flatten)
    x_te, y_te = _finish(x_test / scale, y_test, binarize, flatten)
    return DataSplit(x_tr, y_tr, x_te, y_te)
