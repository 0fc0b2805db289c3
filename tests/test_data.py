import gzip
import struct

import numpy as np
import pytest
import torch

from course_utils.data import DataSplit, load_digits_tensor, load_mnist, read_idx

# --- scikit-learn digits ---------------------------------------------------------------------------


def test_digits_shapes_range_and_types():
    data = load_digits_tensor(test_fraction=0.2, seed=0)
    assert isinstance(data, DataSplit)
    x_train, y_train, x_test, y_test = data
    assert x_train.shape[1] == 64 and x_test.shape[1] == 64
    assert len(x_train) + len(x_test) == 1797
    assert len(x_test) == pytest.approx(0.2 * 1797, abs=1)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    assert set(y_test.tolist()) == set(range(10))
    assert data.image_shape == (8, 8)


def test_digits_are_the_sklearn_images_scaled():
    from sklearn.datasets import load_digits

    raw = load_digits()
    x_train, y_train, x_test, y_test = load_digits_tensor(seed=3)
    pool = torch.as_tensor(raw.data / 16.0, dtype=torch.float32)
    # every returned image is one of the originals, with its own label, and none is used twice
    x_all, y_all = torch.cat([x_train, x_test]), torch.cat([y_train, y_test])
    matches = (x_all[:, None, :] == pool[None, :, :]).all(-1)  # (1797, 1797)
    assert matches.any(1).all()
    index = matches.float().argmax(1)
    assert torch.equal(torch.as_tensor(raw.target)[index], y_all)


def test_digits_split_is_seeded_and_stratified():
    a, b, c = load_digits_tensor(seed=1), load_digits_tensor(seed=1), load_digits_tensor(seed=2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a.x_test, c.x_test)
    train_freq = torch.bincount(a.y_train, minlength=10) / len(a.y_train)
    test_freq = torch.bincount(a.y_test, minlength=10) / len(a.y_test)
    assert torch.allclose(train_freq, test_freq, atol=0.01)


def test_digits_binarize_and_unflattened():
    grey = load_digits_tensor(seed=0)
    binary = load_digits_tensor(seed=0, binarize=True, flatten=False)
    assert binary.x_train.shape[1:] == (8, 8) and binary.image_shape == (8, 8)
    assert set(binary.x_train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(binary.x_train.reshape(-1, 64), (grey.x_train > 0.5).float())


@pytest.mark.parametrize("kwargs", [{"test_fraction": 0.0}, {"test_fraction": 1.0}, {"seed": -1}, {"binarize": 1}])
def test_digits_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        load_digits_tensor(**kwargs)


# --- MNIST from local files ------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Encode ``array`` in the IDX format (independently of the reader under test)."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">f4").tobytes()


@pytest.fixture
def tiny_mnist():
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=6, dtype=np.uint8),
        "x_test": rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=3, dtype=np.uint8),
    }


NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def write_idx_folder(folder, arrays, gz=False, names=NAMES):
    folder.mkdir(exist_ok=True)
    for key, name in names.items():
        data = idx_bytes(arrays[key])
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def check_loaded(data, arrays, flatten=True):
    assert isinstance(data, DataSplit)
    for key in ("x_train", "x_test"):
        expected = torch.as_tensor(arrays[key] / 255.0, dtype=torch.float32)
        if flatten:
            expected = expected.reshape(len(expected), -1)
        assert getattr(data, key).dtype == torch.float32
        assert torch.allclose(getattr(data, key), expected)
    for key in ("y_train", "y_test"):
        assert torch.equal(getattr(data, key), torch.as_tensor(arrays[key], dtype=torch.int64))


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_idx_files(tmp_path, tiny_mnist, gz):
    folder = write_idx_folder(tmp_path / "mnist", tiny_mnist, gz=gz)
    data = load_mnist(folder)
    check_loaded(data, tiny_mnist)
    assert data.x_train.shape == (6, 16) and data.image_shape == (4, 4)


def test_load_mnist_accepts_the_mirror_spelling(tmp_path, tiny_mnist):
    dotted = {k: v.replace("-idx", ".idx") for k, v in NAMES.items()}
    folder = write_idx_folder(tmp_path / "kaggle", tiny_mnist, names=dotted)
    check_loaded(load_mnist(folder, flatten=False), tiny_mnist, flatten=False)


def test_load_mnist_from_npz_file_and_folder(tmp_path, tiny_mnist):
    np.savez(tmp_path / "mnist.npz", **tiny_mnist)
    check_loaded(load_mnist(tmp_path / "mnist.npz"), tiny_mnist)
    check_loaded(load_mnist(tmp_path), tiny_mnist)  # a folder holding mnist.npz


def test_load_mnist_binarize(tmp_path, tiny_mnist):
    np.savez(tmp_path / "mnist.npz", **tiny_mnist)
    data = load_mnist(tmp_path / "mnist.npz", binarize=True)
    expected = torch.as_tensor(tiny_mnist["x_train"].reshape(6, -1) > 127.5, dtype=torch.float32)
    assert torch.equal(data.x_train, expected)


def test_read_idx_roundtrip_and_other_types(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    (tmp_path / "f.idx").write_bytes(idx_bytes(values, type_code=0x0D))
    out = read_idx(tmp_path / "f.idx")
    assert out.shape == (3, 4) and np.allclose(out, values)


def test_load_mnist_missing_folder_or_files(tmp_path, tiny_mnist):
    with pytest.raises(FileNotFoundError, match="does not exist.*never downloads"):
        load_mnist(tmp_path / "nowhere")
    folder = write_idx_folder(tmp_path / "partial", tiny_mnist)
    (folder / NAMES["y_test"]).unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(folder)


def test_load_mnist_malformed_header(tmp_path, tiny_mnist):
    folder = write_idx_folder(tmp_path / "bad", tiny_mnist)
    path = folder / NAMES["x_train"]
    good = path.read_bytes()
    path.write_bytes(b"\x08\x03" + good[2:])  # magic number must start with two zero bytes
    with pytest.raises(ValueError, match="malformed IDX header"):
        load_mnist(folder)
    path.write_bytes(good[:-5])  # truncated data
    with pytest.raises(ValueError, match="truncated"):
        load_mnist(folder)
    path.write_bytes(good[:6])  # ends inside the header
    with pytest.raises(ValueError, match="ends inside the header"):
        load_mnist(folder)


def test_load_mnist_mismatched_labels(tmp_path, tiny_mnist):
    tiny_mnist["y_train"] = tiny_mnist["y_train"][:4]
    folder = write_idx_folder(tmp_path / "mismatch", tiny_mnist)
    with pytest.raises(ValueError, match="6 training images but labels of shape"):
        load_mnist(folder)


def test_load_mnist_bad_npz(tmp_path, tiny_mnist):
    np.savez(tmp_path / "other.npz", images=tiny_mnist["x_train"])
    with pytest.raises(ValueError, match="missing"):
        load_mnist(tmp_path / "other.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_mnist(tmp_path / "broken.npz")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not an .npz"):
        load_mnist(tmp_path / "notes.txt")


def test_gz_that_is_not_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x05")
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(tmp_path / "x.gz")
