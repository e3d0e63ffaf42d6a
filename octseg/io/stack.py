"""Plain image stacks: a folder of PNG/TIFF/JPEG frames (sorted naturally) or a multi-page TIFF.

These formats record no spacing: give ``pixel_spacing_mm``/``frame_spacing_mm`` as arguments or in
a ``spacing.json`` sidecar (inside the folder, or beside the folder/file). The frames are
Cartesian unless the sidecar says ``"space": "polar"``; a Cartesian catheter centre other than the
image centre can be given as ``"catheter_center": [cy, cx]`` in the same sidecar.

Grey frames are scaled to [0, 1] by their bit depth; RGB frames (sepia colour maps) are converted
with :func:`octseg.io.color.display_to_gray`; a fourth channel (alpha) is ignored. Frames are
decoded one file (or one TIFF page) at a time; the files of a chunk are decoded by a few threads
(the decoders release the GIL).

Besides ``loader(start, stop)`` (whole grey frames), the loaders offer
``loader.sampled(start, stop, mask)``: the grey values of the pixels in a boolean ``(H, W)``
mask only, ``(n, mask.sum())`` float32, identical to ``loader(start, stop)[:, mask]``. Batch
inference resamples frames onto a coarser polar grid and needs only the pixels that grid reads
(octseg.model.predictor), so it converts only those to grey.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core.errors import InputError
from octseg.io import limits
from octseg.io.base import Pullback, Reader, register_reader
from octseg.io.color import (
    display_lut,
    display_metadata,
    display_sample,
    is_grey_display,
    rgb_frames_to_gray,
)
from octseg.io.spacing import find_sidecar, read_sidecar_layout, spacing_for

FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")


def natural_key(name: str) -> list[Any]:
    """Sort key: ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image_file(path: Path, page: int = 0) -> np.ndarray:
    """Raw pixel array of one image (or one TIFF page), channels last, values untouched.

    TIFF goes through tifffile (4-channel TIFFs keep all four channels, never premultiplied);
    LZW/Deflate TIFFs fall back to Pillow where the ``imagecodecs`` package is absent.
    """
    if path.suffix.lower() in TIFF_SUFFIXES:
        return [arr for _, arr in read_tiff_pages(path, page, page + 1)][0]
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            if im.mode == "P":
                im = im.convert("RGB")
            return np.asarray(im)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def to_gray(arr: np.ndarray, path: Path, lut: np.ndarray | None = None) -> np.ndarray:
    """One frame (H, W) grey or (H, W, 3|4) colour (through the pullback's fitted display map
    ``lut``, if any: :func:`octseg.io.color.rgb_frames_to_gray`) -> float32 (H, W) in [0, 1]."""
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        if arr.dtype.kind == "f":
            _check_unit_range(arr[..., :3], path)
        return rgb_frames_to_gray(arr[..., :3], lut=lut)
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise InputError(path, f"expected a 2-D grey or RGB frame, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    out = arr.astype(np.float32)
    _check_unit_range(out, path)
    return out


def _check_unit_range(arr: np.ndarray, path: Path) -> None:
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise InputError(path, "floating-point frame values fall outside 0..1")


def gray_at(
    arr: np.ndarray, mask: np.ndarray, path: Path | None, lut: np.ndarray | None = None
) -> np.ndarray:
    """``to_gray(arr, path, lut)[mask]``, converting only the masked pixels where that is the same.

    Integer frames convert pixel by pixel (grey: by bit depth; uint8 colour: by the colour map
    that the whole frame shows, :func:`octseg.io.color.display_to_gray`), so only the masked
    pixels are converted; other kinds (float frames, whose range is checked over
    the whole frame, and wide-integer colour frames) convert whole.
    """
    elementwise = arr.dtype.kind in "biu" and (
        arr.ndim == 2
        or (arr.ndim == 3 and arr.shape[-1] in (1, 2))
        or (arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.dtype == np.uint8)
    )
    if not elementwise or arr.shape[:2] != mask.shape:
        return to_gray(arr, path, lut)[mask]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # whether it is a grey display: whole frame
        grey = None if lut is not None else is_grey_display(arr)
        return rgb_frames_to_gray(arr[mask][:, :3], grey, lut)
    return to_gray(arr[mask][None], path)[0]


DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))


def _map_frames(fn: Callable[[Any], np.ndarray], items: Sequence[Any]) -> list[np.ndarray]:
    """``[fn(i) for i in items]``, over ``DECODE_THREADS`` threads for more than a few items
    (the first error in item order is raised, as in the plain loop)."""
    if DECODE_THREADS <= 1 or len(items) < 4:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="octseg-decode") as ex:
        return list(ex.map(fn, items))


class _FolderLoader:
    """Frame loader of an image folder: whole grey frames, or the grey values of masked pixels."""

    def __init__(self, files: list[Path], h: int, w: int, lut: np.ndarray | None = None):
        self.files, self.h, self.w, self.lut = files, h, w, lut

    def _raw(self, f: Path) -> np.ndarray:
        arr = read_image_file(f)
        if arr.shape[:2] != (self.h, self.w):
            raise InputError(f, f"frame size {arr.shape[:2]} differs from {(self.h, self.w)}")
        return arr

    def __call__(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.h, self.w), dtype=np.float32)
        grey = _map_frames(lambda f: to_gray(self._raw(f), f, self.lut), self.files[start:stop])
        for k, g in enumerate(grey):
            out[k] = g
        return out

    def sampled(self, start: int, stop: int, mask: np.ndarray) -> np.ndarray:
        vals = _map_frames(
            lambda f: gray_at(self._raw(f), mask, f, self.lut), self.files[start:stop]
        )
        out = np.empty((stop - start, int(mask.sum())), dtype=np.float32)
        for k, v in enumerate(vals):
            out[k] = v
        return out


class _TiffLoader:
    """Frame loader of a multi-page TIFF (pages in order through one open file)."""

    def __init__(self, path: Path, h: int, w: int, lut: np.ndarray | None = None):
        self.path, self.h, self.w, self.lut = path, h, w, lut

    def _pages(self, start: int, stop: int) -> Iterator[np.ndarray]:
        for i, arr in read_tiff_pages(self.path, start, stop):
            if arr.shape[:2] != (self.h, self.w):
                raise InputError(
                    self.path, f"page {i} size {arr.shape[:2]} differs from {(self.h, self.w)}"
                )
            yield arr

    def __call__(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.h, self.w), dtype=np.float32)
        for k, arr in enumerate(self._pages(start, stop)):
            out[k] = to_gray(arr, self.path, self.lut)
        return out

    def sampled(self, start: int, stop: int, mask: np.ndarray) -> np.ndarray:
        out = np.empty((stop - start, int(mask.sum())), dtype=np.float32)
        for k, arr in enumerate(self._pages(start, stop)):
            out[k] = gray_at(arr, mask, self.path, self.lut)
        return out


def _declared_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from an image file's header (Pillow opens lazily); ``(4, 4)`` where
    the header is unreadable, so that decoding reports the problem."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except Exception:
        return 4, 4


def _layout(path: Path) -> tuple[str, tuple[float, float] | None]:
    """``space`` and ``catheter_center`` from the sidecar (default Cartesian, image centre)."""
    side = find_sidecar(path)
    return read_sidecar_layout(side) if side is not None else ("cartesian", None)


def _tiff_page_array(pg: Any) -> np.ndarray:
    arr = pg.asarray()
    if pg.samplesperpixel > 1 and pg.planarconfig == 2 and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)  # separate planes -> channels last
    return arr


def read_tiff_pages(path: Path, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(page, raw array)`` for pages ``start..stop-1`` of a TIFF, through one open file.

    Pages are visited in order, so a chunk costs one open and one walk to ``start`` (not one
    open and walk per page). LZW/Deflate pages fall back to Pillow where ``imagecodecs`` is
    absent.
    """
    import tifffile

    done = start  # pages before this one have been yielded
    try:
        try:
            with tifffile.TiffFile(path) as tf:
                for i in range(start, stop):
                    arr = _tiff_page_array(tf.pages[i])
                    done = i + 1
                    yield i, arr
            return
        except ValueError as exc:
            if "imagecodecs" not in str(exc):
                raise
        from PIL import Image

        with Image.open(path) as im:
            for i in range(done, stop):
                im.seek(i)
                yield i, np.asarray(im)  # Pillow keeps unassociated alpha as stored
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def _decoded(read: Any, indices: list[int]) -> Iterator[np.ndarray]:
    """``read(i)`` for each index, skipping frames that cannot be decoded (reading the frames
    names the problem)."""
    for i in indices:
        try:
            yield read(i)
        except InputError:
            continue


def _display(first: np.ndarray, files: list[Path]) -> dict[str, Any]:
    """A colour frame folder's display (:func:`octseg.io.color.display_metadata`)."""
    if first.ndim != 3:
        return {}
    rest = [i for i in display_sample(len(files)) if i]
    return display_metadata([first, *_decoded(lambda i: read_image_file(files[i]), rest)])


def _tiff_display(path: Path, n: int) -> dict[str, Any]:
    """A colour TIFF's display, from its sampled pages."""
    pages = _decoded(lambda i: read_image_file(path, i), display_sample(n))
    return display_metadata(pages)


@register_reader
class ImageFolderReader(Reader):
    """A folder holding one image file per frame (PNG/TIFF/JPEG/BMP)."""

    name = "image-folder"

    @classmethod
    def can_read(cls, path: Path) -> bool:
        return path.is_dir() and any(
            p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir() if p.is_file()
        )

    @classmethod
    def read(cls, path: Path, **options: Any) -> Pullback:
        path = Path(path)
        if not path.is_dir():
            raise InputError(path, "not a folder of image frames")
        files = frame_files(path)
        if not files:
            raise InputError(path, f"folder holds no image frames ({', '.join(FRAME_SUFFIXES)})")
        limits.check_frames(path, len(files), *_declared_size(files[0]))  # before decoding
        first = read_image_file(files[0])
        h, w = first.shape[:2]
        px, fr, sources = spacing_for(path, options)
        space, center = _layout(path)
        display = _display(first, files)
        return Pullback(
            source=str(path),
            format=cls.name,
            space=space,
            n_frames=len(files),
            height=h,
            width=w,
            pixel_spacing_mm=px,
            frame_spacing_mm=fr,
            loader=_FolderLoader(files, h, w, display_lut(display)),
            catheter_center=center,
            metadata={
                "first_file": files[0].name,
                "channels": 1 if first.ndim == 2 else int(first.shape[-1]),
                "dtype": str(first.dtype),
                "spacing_source": sources,
                **display,
            },
        )


@register_reader
class TiffStackReader(Reader):
    """A (multi-page) TIFF file: one page per frame."""

    name = "tiff"

    @classmethod
    def can_read(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in TIFF_SUFFIXES

    @classmethod
    def read(cls, path: Path, **options: Any) -> Pullback:
        import tifffile

        path = Path(path)
        try:
            with tifffile.TiffFile(path) as tf:
                n = len(tf.pages)
                page0 = tf.pages[0]
                h, w = int(page0.imagelength), int(page0.imagewidth)
                channels, dtype = int(page0.samplesperpixel), page0.dtype
        except Exception as exc:
            raise InputError(path, f"not a readable TIFF ({type(exc).__name__}: {exc})") from None
        if n == 0:
            raise InputError(path, "TIFF holds no pages")
        limits.check_frames(
            path, n, h, w, samples=channels, bytes_per_sample=np.dtype(dtype).itemsize
        )  # before any page is decoded
        px, fr, sources = spacing_for(path, options)
        space, center = _layout(path)
        display = _tiff_display(path, n) if channels >= 3 else {}
        return Pullback(
            source=str(path),
            format=cls.name,
            space=space,
            n_frames=n,
            height=h,
            width=w,
            pixel_spacing_mm=px,
            frame_spacing_mm=fr,
            loader=_TiffLoader(path, h, w, display_lut(display)),
            catheter_center=center,
            metadata={
                "channels": channels,
                "dtype": str(dtype),
                "spacing_source": sources,
                **display,
            },
        )
