"""Reading the user's own images: ``.npy``/``.npz`` arrays or a folder of PNGs."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

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
        LatentsteerError: missing path, unknown format, unreadable file, ambiguous ``.npz``,
            or PNGs of different sizes.
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
        loaded = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise LatentsteerError(f"{p} is not a readable {suffix} file ({exc})") from None
    if suffix == ".npz":
        with loaded:
            keys = list(loaded.keys())
            if "images" in keys:
                arr = loaded["images"]
            elif len(keys) == 1:
                arr = loaded[keys[0]]
            else:
                raise LatentsteerError(
                    f"{p.name} holds arrays {keys}; name the images array 'images'"
                )
    else:
        arr = loaded
    if arr.ndim == 2:
        side = int(np.sqrt(arr.shape[1]))
        if side > 2 and side * side == arr.shape[1] and arr.shape[0] != arr.shape[1]:
            raise LatentsteerError(
                f"{p.name} has shape {arr.shape}: flat images? reshape flat images to "
                f"(n, {side}, {side}) first"
            )
        arr = arr[None]  # one image
    return arr, None


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
