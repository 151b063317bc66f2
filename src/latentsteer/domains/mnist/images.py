"""Reading the user's own images: ``.npy``/``.npz`` arrays or a folder of PNGs."""

from __future__ import annotations

import os
import pickletools
import re
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from latentsteer.errors import LatentsteerError

IMAGE_SUFFIXES = (".png",)


def _natural_key(name: str) -> list[object]:
    """Sort key that puts img2.png before img10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def read_images(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str] | None]:
    """Load images from an array file or a folder of PNGs.

    Args:
        path: ``.npy`` (an ``(n, H, W)`` array, or one ``(H, W)`` image), ``.npz`` (the array
            named ``images``, or its only array), or a folder of ``.png`` files, read as grey
            in natural name order.

    Returns:
        ``(images (n, H, W), names)``: ``names`` lists the PNG file names, or is ``None`` for
        arrays. Values are as stored (uint8 0-255 for PNGs).

    Raises:
        LatentsteerError: missing path, unknown format, unreadable file, a file that holds
            pickled Python objects (never unpickled), ambiguous ``.npz``, or PNGs of different
            sizes.
    """
    p = Path(path)
    if not p.exists():
        raise LatentsteerError(f"{p} does not exist")
    if p.is_dir():
        return _read_png_folder(p)
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise LatentsteerError(
            f"{p.name}: unsupported input; give a .npy or .npz array or a folder of PNGs"
        )
    try:
        arr = _load_array(p)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise LatentsteerError(_unreadable(p, suffix, exc)) from None
    if arr.ndim == 2:
        side = int(np.sqrt(arr.shape[1]))
        if side > 2 and side * side == arr.shape[1] and arr.shape[0] != arr.shape[1]:
            raise LatentsteerError(
                f"{p.name} has shape {arr.shape}: flat images? reshape flat images to "
                f"(n, {side}, {side}) first"
            )
        arr = arr[None]  # one image
    return arr, None


def _load_array(p: Path) -> np.ndarray:
    """The array in a ``.npy``, or the images array of a ``.npz``, never unpickling."""
    loaded = np.load(p, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded
    with loaded:
        keys = list(loaded.keys())
        if "images" in keys:
            return loaded["images"]  # members load lazily: object arrays fail here
        if len(keys) == 1:
            return loaded[keys[0]]
        raise LatentsteerError(f"{p.name} holds arrays {keys}; name the images array 'images'")


def _unreadable(p: Path, suffix: str, exc: Exception) -> str:
    """Why numpy refused ``p``, in our words, found without unpickling anything.

    numpy's own messages for pickled content advise loading it unsafely: never quoted.
    """
    kind = "junk"
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                kind = "numpy"
                for name in zf.namelist():
                    with zf.open(name) as member:
                        if _npy_has_objects(member):
                            kind = "objects"
                            break
        else:
            with open(p, "rb") as f:
                magic = np.lib.format.MAGIC_PREFIX
                if f.read(len(magic)) == magic:
                    f.seek(0)
                    kind = "objects" if _npy_has_objects(f) else "numpy"
                else:
                    f.seek(0)
                    kind = "objects" if _is_pickle(f) else "junk"
    except Exception:  # a best-effort diagnosis: fall back to numpy's reason
        kind = "objects" if "pickle" in str(exc) else "numpy"
    if kind == "objects":
        return (
            f"{p} holds Python objects (pickled), not an image array; save the images as a "
            "numeric array with numpy.save"
        )
    if kind == "junk":
        return f"{p} is not a readable {suffix} file (not in NumPy's .npy or .npz format)"
    return f"{p} is not a readable {suffix} file ({exc})"


def _npy_has_objects(f: IO[bytes]) -> bool:
    """Whether an ``.npy`` stream's header declares an object dtype (reads the header only)."""
    try:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        _, _, dtype = read(f)
    except (ValueError, EOFError, SyntaxError):
        return False
    return bool(dtype.hasobject)


def _is_pickle(f: IO[bytes]) -> bool:
    """Whether a binary stream is a pickle, judged from its opcodes without executing any."""
    head = f.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO: Python 3's pickles
        return True
    f.seek(0)
    try:
        ops = [op.name for op, _, _ in pickletools.genops(f)]
    except ValueError:
        return False
    return bool(ops) and ops[-1] == "STOP"


def _read_png_folder(folder: Path) -> tuple[np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    files = sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda f: _natural_key(f.name),
    )
    if not files:
        raise LatentsteerError(f"{folder} holds no .png files")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                arrays.append(np.asarray(im.convert("L"), dtype=np.uint8))
        except (UnidentifiedImageError, OSError) as exc:
            raise LatentsteerError(f"{f.name} is not a readable PNG ({exc})") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise LatentsteerError(
            f"PNGs in {folder} differ in size ({', '.join(str(s) for s in sorted(shapes))}); "
            "measure one size at a time"
        )
    return np.stack(arrays), [f.name for f in files]
