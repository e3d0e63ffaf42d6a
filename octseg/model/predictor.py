"""The predictor: a model rebuilt from its checkpoint alone, fed whole frames in batches.

``Predictor.from_checkpoint(path)`` loads the network and its ``meta`` (class list, 2.5D context,
net grid, normalisation; see octseg.model.checkpoint). For one pullback:

1. :meth:`Predictor.to_grid` resamples its frames (polar, or Cartesian about the catheter centre)
   onto the polar net grid the network was trained on, as float16 grey values.
2. :meth:`Predictor.segment` runs the network over every frame, ``batch_size`` whole frames at a
   time, each input stacking the ``context_frames`` neighbours as channels exactly as in
   training (ends replicated), with optional test-time augmentation (rolls along the A-line axis
   and a flip of it, softmax averaged), AMP, ``channels_last`` and ``torch.compile``.
3. The result is mapped back to the input's space (native polar grid, or the Cartesian image
   about its catheter centre): ``resample="labels"`` takes the most probable class on the net
   grid and maps it by nearest neighbour (one gather through a cached index map),
   ``resample="probs"`` interpolates the class probabilities bilinearly, then takes the most
   probable class: label maps in the input's own pixel grid.
"""

from __future__ import annotations

import contextlib
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.core.errors import InputError
from octseg.core.polar import polar_to_cartesian
from octseg.model.extend import apply_extension, extend_calcium, is_extend_prob
from octseg.model.wrap import main_output

AMP_CHOICES = ("auto", "off", "fp16", "bf16")


NET_ALINES_RANGE = (16, 4096)
"""The A-line counts a network may be run on (``net_alines``)."""


def check_net_alines(value: Any) -> int:
    """``value`` as an A-line count in :data:`NET_ALINES_RANGE`, else InputError."""
    lo, hi = NET_ALINES_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise InputError(None, f"net_alines={value!r}: a whole number of A-lines, {lo}-{hi}")
    return int(value)


def pick_device(device: str | None = "auto", local_rank: int | None = None) -> torch.device:
    """The device to run on. ``auto``: ``cuda:LOCAL_RANK`` if CUDA is available, else the CPU.

    A bare ``cuda`` in a distributed run (``WORLD_SIZE`` > 1, e.g. under torchrun) also means
    ``cuda:LOCAL_RANK``: every rank on its own GPU, not all of them on ``cuda:0``. ``local_rank``
    defaults to the ``LOCAL_RANK`` environment variable."""
    import os

    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return torch.device("cuda", local_rank % n if n else local_rank)
    return dev


def amp_dtype(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` (``auto``: fp16 on CUDA, off on CPU)."""
    if amp is True:
        amp = "auto"
    if amp in (None, False, "off", "none", "false"):
        return None
    if amp not in AMP_CHOICES:
        raise InputError(None, f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    return torch.float16 if amp == "fp16" else torch.bfloat16


def tta_transforms(n_alines: int, rolls: int = 1, flip: bool = False) -> list[tuple[int, bool]]:
    """(shift, flip) pairs: ``rolls`` shifts evenly over the A-line axis, each with/without flip."""
    rolls = max(1, int(rolls))
    shifts = sorted({round(i * n_alines / rolls) % n_alines for i in range(rolls)})
    return [(s, f) for s in shifts for f in ((False, True) if flip else (False,))]


@dataclass(frozen=True)
class PredictOptions:
    """How the network is run (none of these changes which checkpoint is loaded).

    ``device``: ``auto`` / ``cpu`` / ``cuda[:N]`` or a :class:`torch.device` (:func:`pick_device`);
    ``batch_size`` whole frames per forward pass; ``amp``: :data:`AMP_CHOICES` (or a bool);
    ``channels_last`` / ``compile``: memory format and ``torch.compile``; ``tta_rolls`` /
    ``tta_flip``: test-time augmentation (:func:`tta_transforms`); ``out_chunk``: frames per
    interpolation with ``resample="probs"``; ``resample``: ``labels`` (argmax on the net grid,
    nearest neighbour back) or ``probs`` (probabilities interpolated back, then argmax);
    ``calcium_extend_prob`` (0: off) / ``calcium_seed_min_mm2``: the calcium arc extension on
    the net grid (:mod:`octseg.model.extend`) and the smallest calcium component that seeds it;
    ``net_alines``: the A-lines of the net grid the network is run on (None: the checkpoint's;
    the depth axis stays the checkpoint's). More A-lines than trained show calcium far from the
    catheter wider, as the network saw it nearer the catheter in training (docs/inference.md)."""

    device: str | torch.device | None = "auto"
    batch_size: int = 8
    amp: str | bool | None = "auto"
    channels_last: bool = False
    compile: bool = False
    tta_rolls: int = 1
    tta_flip: bool = False
    out_chunk: int = 4
    resample: str = "labels"
    calcium_extend_prob: float = 0.0
    calcium_seed_min_mm2: float = 0.0
    net_alines: int | None = None

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> PredictOptions:
        """The options named by any object with the same attributes (e.g. the infer settings,
        whose ``tta_options()`` / ``extend_options()`` give the TTA and the calcium extension
        as run); ``overrides`` win."""
        names = [f.name for f in fields(cls) if hasattr(settings, f.name)]
        values = {n: getattr(settings, n) for n in names}
        for method in ("tta_options", "extend_options"):
            if callable(getattr(settings, method, None)):
                values |= getattr(settings, method)()
        return cls(**{**values, **overrides})


class Predictor:
    """A network and its checkpoint ``meta``, run as ``options`` say (:class:`PredictOptions`)."""

    def __init__(
        self,
        model: torch.nn.Module,
        meta: Mapping[str, Any],
        options: PredictOptions | None = None,
        *,
        source: str | Path | None = None,
    ):
        self.source = None if source is None else str(source)
        self._read_meta(meta, source)
        opts = options or PredictOptions()
        self.trained_alines = self.net_grid["n_alines"]
        if opts.net_alines is not None:
            self.net_grid = {**self.net_grid, "n_alines": check_net_alines(opts.net_alines)}
        self.options = opts
        self.device = (
            opts.device if isinstance(opts.device, torch.device) else pick_device(opts.device)
        )
        self.batch_size = max(1, int(opts.batch_size))
        self.amp = amp_dtype(opts.amp, self.device)
        self.channels_last = bool(opts.channels_last)
        self.out_chunk = max(1, int(opts.out_chunk))
        if opts.resample not in ("probs", "labels"):
            raise InputError(None, f"resample must be 'probs' or 'labels', got {opts.resample!r}")
        self.resample = opts.resample
        low, seed = opts.calcium_extend_prob, opts.calcium_seed_min_mm2
        if not is_extend_prob(low):
            raise InputError(None, f"calcium_extend_prob must be in [0, 1), got {low!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, float)) or not seed >= 0:
            raise InputError(None, f"calcium_seed_min_mm2 must be a number >= 0, got {seed!r}")
        self.tta = tta_transforms(self.net_grid["n_alines"], opts.tta_rolls, opts.tta_flip)
        model = model.to(self.device).eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._check_model()
        if opts.compile:
            self.model = torch.compile(model)
        self.lut = torch.tensor(self.classes, dtype=torch.uint8, device=self.device)

    def _read_meta(self, meta: Mapping[str, Any], source: str | Path | None) -> None:
        """Class list, 2.5D context, net grid and normalisation from the checkpoint's meta."""
        from octseg.core.classes import check_classes
        from octseg.model.checkpoint import check_normalization
        from octseg.model.grid import check_net_grid

        try:
            self.classes = check_classes(meta["classes"], source)
            self.k = int(meta.get("context_frames", 1))
            self.net_grid = check_net_grid(meta["net_grid"])
            self.normalization = check_normalization(source, meta.get("normalization"))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(
                source, f"checkpoint meta is incomplete or malformed ({exc})"
            ) from None
        if self.k < 1 or self.k % 2 == 0:
            raise InputError(source, f"checkpoint context_frames must be odd >= 1, got {self.k}")
        self.meta = dict(meta)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | Sequence[str | Path],
        options: PredictOptions | None = None,
        class_weights: Mapping[str, Sequence[float]] | None = None,
        **overrides: Any,
    ) -> Predictor:
        """The network and meta of the checkpoint file ``path`` (a list of several: their
        ensemble, :mod:`octseg.model.ensemble`, with ``class_weights`` as infer.py's
        ``ensemble_weights``), run as ``options`` say, with ``overrides`` (fields of
        :class:`PredictOptions`, e.g. ``device="cpu"``) replaced."""
        from octseg.model.ensemble import checkpoint_paths, load_models, source_name

        options = replace(options or PredictOptions(), **overrides)
        paths = checkpoint_paths(path)
        for p in paths:
            if not Path(p).is_file():
                raise InputError(p, "checkpoint not found")
        model, meta = load_models(paths, class_weights)
        return cls(model, meta, options, source=source_name(paths))

    def _check_model(self) -> None:
        """One tiny forward pass: the network must take k channels and give one per class."""
        g = self.net_grid
        x = torch.zeros(1, self.k, g["n_alines"], g["n_samples"], device=self.device)
        try:
            with torch.inference_mode():
                y = self.model(x)
        except Exception as exc:
            raise InputError(
                self.source,
                f"model does not run on ({self.k}, {g['n_alines']}, "
                f"{g['n_samples']}) inputs: {type(exc).__name__}: {exc}",
            ) from None
        y = main_output(y)
        if y.ndim != 4 or y.shape[1] != len(self.classes):
            raise InputError(
                self.source,
                f"model gives {tuple(y.shape[1:2])} output channels but the checkpoint lists "
                f"{len(self.classes)} classes {self.classes}: another class set",
            )

    # ------------------------------------------------------------------ per pullback
    def to_grid(
        self,
        pullback: Any,
        chunk: int = 32,
        device: str | torch.device | None = None,
        out: GridStream | None = None,
    ) -> torch.Tensor:
        """All frames of ``pullback`` on the net grid: float16 ``(F, A', R')`` in [0, 1].

        Resampled on ``device`` (default: the model's) and kept there, so the network's inputs
        need no host-to-device copy per batch (one copy of the raw frames per pullback).
        With ``out`` (a :class:`GridStream`), the frames are written into its tensor and published
        chunk by chunk, so that :meth:`segment` can start on the first frames while the rest are
        still being decoded.

        Fast path (same result, bit for bit): when the pullback's loader can decode only chosen
        pixels (``loader.sampled(start, stop, mask)``, octseg.io.stack / npzimage), only the
        pixels the net-grid interpolation reads (:meth:`footprint`) are converted to grey and
        copied; the others stay 0, which the interpolation never reads."""
        grid, publish = self._grid_target(pullback, device, out)
        sampled = getattr(getattr(pullback, "loader", None), "sampled", None)
        fp = self.footprint(pullback, grid.device) if callable(sampled) else None
        if fp is None:
            self._fill_whole(pullback, grid, chunk, publish)
        else:
            self._fill_sampled(pullback, grid, chunk, publish, fp)
        return grid

    def _grid_target(
        self, pullback: Any, device: str | torch.device | None, out: GridStream | None
    ) -> tuple[torch.Tensor, Callable[[int], None] | None]:
        """The tensor :meth:`to_grid` fills (``out``'s, or a new one on ``device``) and the
        function that publishes its frames (None without ``out``)."""
        g = self.net_grid
        shape = (pullback.n_frames, g["n_alines"], g["n_samples"])
        if out is None:
            device = self.device if device is None else torch.device(device)
            return torch.empty(shape, dtype=torch.float16, device=device), None
        if tuple(out.tensor.shape) != shape:
            raise ValueError(
                f"stream tensor {tuple(out.tensor.shape)} does not fit {pullback.n_frames} frames"
            )
        return out.tensor, out.publish

    def _fill_whole(
        self,
        pullback: Any,
        grid: torch.Tensor,
        chunk: int,
        publish: Callable[[int], None] | None,
    ) -> None:
        """:meth:`to_grid` from whole decoded frames, ``chunk`` frames at a time."""
        for start, block in pullback.iter_chunks(chunk):
            x = _to_device(np.ascontiguousarray(block), grid.device)
            stop = start + len(block)
            grid[start:stop] = self._sample_grid(x, pullback).to(torch.float16)
            if publish is not None:
                publish(stop)

    def _fill_sampled(
        self,
        pullback: Any,
        grid: torch.Tensor,
        chunk: int,
        publish: Callable[[int], None] | None,
        footprint: tuple[np.ndarray, torch.Tensor],
    ) -> None:
        """:meth:`to_grid` from only the pixels in the ``footprint`` (:meth:`footprint`'s mask
        and flat indices), decoded by the loader's ``sampled``; the other pixels stay 0."""
        mask, idx = footprint
        sampled = pullback.loader.sampled
        n, h, w = pullback.n_frames, pullback.height, pullback.width
        buf = torch.zeros((min(chunk, n), h * w), dtype=torch.float32, device=grid.device)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            vals = sampled(start, stop, mask)
            if vals.shape != (stop - start, idx.numel()):
                raise InputError(
                    pullback.source,
                    f"decoded frames {start}:{stop} have {vals.shape} sampled values, "
                    f"expected {(stop - start, idx.numel())}",
                )
            v = _to_device(np.ascontiguousarray(vals, dtype=np.float32), grid.device)
            b = buf[: stop - start]
            b.index_copy_(1, idx, v)
            y = self._sample_grid(b.view(stop - start, h, w), pullback)
            grid[start:stop] = y.to(torch.float16)
            if publish is not None:
                publish(stop)

    def stream(self, pullback: Any, device: str | torch.device | None = None) -> GridStream:
        """An empty :class:`GridStream` for ``pullback``, to be filled by :meth:`to_grid`."""
        device = self.device if device is None else torch.device(device)
        g = self.net_grid
        return GridStream(
            torch.empty(
                (pullback.n_frames, g["n_alines"], g["n_samples"]),
                dtype=torch.float16,
                device=device,
            )
        )

    def _sample_grid(self, x: torch.Tensor, pullback: Any) -> torch.Tensor:
        """Frames ``(B, H, W)`` of ``pullback``'s space -> the net grid (bilinear)."""
        from octseg.model.grid import cartesian_to_net_grid, to_net_grid

        if pullback.space == "polar":
            return to_net_grid(x, pullback.pixel_spacing_mm, self.net_grid)
        return cartesian_to_net_grid(
            x, pullback.pixel_spacing_mm, self.net_grid, pullback.catheter_center
        )

    def _geometry_key(self, pullback: Any, device: torch.device) -> tuple:
        center = pullback.catheter_center if pullback.space == "cartesian" else None
        return (
            pullback.space,
            int(pullback.height),
            int(pullback.width),
            float(pullback.pixel_spacing_mm),
            None if center is None else (float(center[0]), float(center[1])),
            str(device),
        )

    def footprint(
        self, pullback: Any, device: str | torch.device | None = None, max_fraction: float = 0.6
    ) -> tuple[np.ndarray, torch.Tensor] | None:
        """The input pixels the net-grid interpolation reads, for ``pullback``'s geometry.

        ``(mask, flat_index)``: a boolean ``(H, W)`` mask (numpy) and its flat indices (long, on
        ``device``), or None when it covers more than ``max_fraction`` of the frame (no gain).
        Found exactly from the gradient of the resampling on ``device`` (the pixels with a
        non-zero weight for some net-grid sample) and checked there: resampling a random frame
        and the same frame zeroed outside the mask must agree bit for bit, else None (the caller
        then converts whole frames). Cached per geometry."""
        device = self.device if device is None else torch.device(device)
        cache = self.__dict__.setdefault("_footprints", {})
        key = self._geometry_key(pullback, device)
        if key in cache:
            return cache[key]
        h, w = int(pullback.height), int(pullback.width)
        result = None
        with torch.enable_grad():
            x = torch.zeros((1, h, w), dtype=torch.float32, device=device, requires_grad=True)
            self._sample_grid(x, pullback).sum().backward()
        used = x.grad[0] != 0
        if float(used.float().mean()) <= max_fraction:
            with torch.inference_mode():
                gen = torch.Generator().manual_seed(0)
                r = torch.rand((1, h, w), generator=gen).to(device)
                same = torch.equal(
                    self._sample_grid(r, pullback), self._sample_grid(r * used, pullback)
                )
            if same:
                mask = used.cpu().numpy()
                idx = torch.from_numpy(np.flatnonzero(mask)).to(device)
                result = (mask, idx)
        cache[key] = result
        return result

    def back_index(self, pullback: Any) -> torch.Tensor:
        """Flat index map for ``resample=labels``: output pixel -> 1 + net-grid pixel (0: none).

        Made by sending an image of the net-grid pixel numbers through the very nearest-neighbour
        mapping the label maps take (:func:`octseg.model.grid.from_net_grid` for polar
        inputs, :func:`octseg.core.polar.polar_to_cartesian` for Cartesian ones), so that a gather
        with it gives the same labels bit for bit, at a fraction of the cost. Cached."""
        from octseg.model.grid import from_net_grid

        cache = self.__dict__.setdefault("_back_index", {})
        key = self._geometry_key(pullback, self.device)
        if key in cache:
            return cache[key]
        g = self.net_grid
        a, r = g["n_alines"], g["n_samples"]
        src = torch.arange(1, a * r + 1, dtype=torch.int32, device=self.device).view(1, a, r)
        with torch.inference_mode():
            if pullback.space == "polar":
                q = from_net_grid(
                    src, (pullback.height, pullback.width), pullback.pixel_spacing_mm, g
                )
            else:
                q = polar_to_cartesian(
                    src,
                    out_size=(pullback.height, pullback.width),
                    polar_spacing_mm=g["spacing_mm"],
                    cart_spacing_mm=pullback.pixel_spacing_mm,
                    center=pullback.catheter_center,
                    mode="nearest",
                )
        idx = q.reshape(-1).long().clone()
        cache[key] = idx
        return idx

    def prepare(self, pullback: Any) -> None:
        """Build the cached per-geometry tables (the label back-mapping) ahead of
        :meth:`segment`, e.g. on the reader thread while the model works on another pullback."""
        if self.resample == "labels":
            self.back_index(pullback)

    def network_inputs(self, grid: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """(B, k, A', R') normalised network input for frames start..stop-1 of a net-grid
        pullback ``grid`` (:meth:`to_grid`), context ends replicated: what :meth:`probabilities`
        takes."""
        h = self.k // 2
        n = grid.shape[0]
        t = torch.arange(start, stop)[:, None] + torch.arange(-h, h + 1)[None, :]
        idx = t.clamp(0, n - 1)
        x = grid[idx.reshape(-1)].to(self.device, non_blocking=True).float()
        x = x.reshape(stop - start, self.k, *grid.shape[1:])
        from octseg.model.grid import normalize

        return normalize(x, self.normalization)

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities (B, C, A', R') on the net grid, TTA-averaged."""
        acc = None
        for shift, flip in self.tta:
            xi = x
            if shift:
                xi = torch.roll(xi, shifts=shift, dims=-2)
            if flip:
                xi = torch.flip(xi, dims=(-2,))
            if self.channels_last:
                xi = xi.contiguous(memory_format=torch.channels_last)
            ctx = (
                torch.autocast(self.device.type, dtype=self.amp)
                if self.amp is not None
                else contextlib.nullcontext()
            )
            with ctx:
                y = main_output(self.model(xi))
            p = torch.softmax(y.float(), dim=1)
            if flip:
                p = torch.flip(p, dims=(-2,))
            if shift:
                p = torch.roll(p, shifts=-shift, dims=-2)
            acc = p if acc is None else acc + p
        return acc / len(self.tta)

    @torch.inference_mode()
    def to_labels(self, probs: torch.Tensor, pullback: Any) -> torch.Tensor:
        """Class probabilities on the net grid -> uint8 labels (B, H, W) in the input's space."""
        from octseg.model.grid import from_net_grid

        g = self.net_grid
        if self.resample == "labels":  # argmax on the net grid, nearest neighbour back: cheap
            arg = _argmax_channels(probs)
            joined = self._calcium_joined(probs, arg)
            if joined is not None:
                arg = torch.where(joined, self.classes.index(CALCIUM), arg)
            lab = self.lut[arg].reshape(probs.shape[0], -1)
            lab = torch.cat([lab.new_zeros((lab.shape[0], 1)), lab], dim=1)
            idx = self.back_index(pullback)
            q = torch.gather(lab, 1, idx.expand(lab.shape[0], -1))
            return q.view(probs.shape[0], pullback.height, pullback.width)
        joined = self._calcium_joined(probs)
        if joined is not None:
            probs = apply_extension(probs, joined, self.classes.index(CALCIUM))
        outs = []
        step = self.out_chunk  # resample=probs: interpolate the probabilities, then argmax
        for i in range(0, probs.shape[0], step):
            p = probs[i : i + step]
            if pullback.space == "polar":
                q = from_net_grid(
                    p, (pullback.height, pullback.width), pullback.pixel_spacing_mm, g
                )
            else:
                q = polar_to_cartesian(
                    p,
                    out_size=(pullback.height, pullback.width),
                    polar_spacing_mm=g["spacing_mm"],
                    cart_spacing_mm=pullback.pixel_spacing_mm,
                    center=pullback.catheter_center,
                    mode="bilinear",
                )
            outs.append(self.lut[_argmax_channels(q)])
        return torch.cat(outs)

    def _calcium_joined(
        self, probs: torch.Tensor, arg: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The net-grid samples the calcium arc extension adds (:mod:`octseg.model.extend`),
        or None when it is off (``calcium_extend_prob`` 0, or no calcium class). ``arg``: the
        argmax of ``probs`` when the caller has it."""
        from octseg.model.postprocess import large_components

        low = float(self.options.calcium_extend_prob)
        if not low or CALCIUM not in self.classes or BACKGROUND not in self.classes:
            return None
        ca = self.classes.index(CALCIUM)
        arg = _argmax_channels(probs) if arg is None else arg
        seeds = large_components(
            arg == ca, self.net_grid["spacing_mm"], float(self.options.calcium_seed_min_mm2)
        )
        bg = self.classes.index(BACKGROUND)
        return extend_calcium(probs, arg, calcium=ca, background=bg, low=low, seeds=seeds)

    def segment(
        self,
        grid: torch.Tensor | GridStream,
        pullback: Any,
        progress: Callable[[int], None] | None = None,
        timings: dict[str, float] | None = None,
    ) -> np.ndarray:
        """Label maps ``(F, H, W)`` uint8 for every frame, in the input's space and grid.

        ``grid``: the frames on the net grid (:meth:`to_grid`), or a :class:`GridStream` still
        being filled by another thread: each batch then waits only for the frames it needs (its
        own and ``context_frames // 2`` beyond), and a reading error raised there stops it.

        On CUDA the labels come back through two pinned host buffers with non-blocking copies:
        batch ``i`` is copied while batch ``i + 1`` is computed."""
        stream = grid if isinstance(grid, GridStream) else None
        grid = (grid if stream is None else stream.tensor).to(self.device)  # no-op after to_grid
        n = grid.shape[0]
        sink = _LabelSink(self, pullback, n)
        spent = {"model_s": 0.0, "to_input_space_s": 0.0, "wait_read_s": 0.0}
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            if stream is not None:
                t_w = time.perf_counter()
                stream.wait(min(n, stop + self.k // 2))
                spent["wait_read_s"] += time.perf_counter() - t_w
            self._segment_batch(grid, start, stop, sink, spent)
            if progress is not None:
                progress(stop - start)
        sink.flush()
        if timings is not None:
            if stream is None:
                del spent["wait_read_s"]
            for key, seconds in spent.items():
                timings[key] = timings.get(key, 0.0) + seconds
        return sink.labels

    def _segment_batch(
        self,
        grid: torch.Tensor,
        start: int,
        stop: int,
        sink: _LabelSink,
        spent: dict[str, float],
    ) -> None:
        """Frames ``start..stop-1``: network, back to the input's space (``sink.pullback``), into
        ``sink``."""
        t0 = time.perf_counter()
        probs = self.probabilities(self.network_inputs(grid, start, stop))
        ok = torch.isfinite(probs).all()  # checked where the batch is synchronised anyway
        t1 = time.perf_counter()
        sink.put(self.to_labels(probs, sink.pullback), ok, start, stop)
        spent["model_s"] += t1 - t0
        spent["to_input_space_s"] += time.perf_counter() - t1

    def _check_finite(self, ok: torch.Tensor, pullback: Any, start: int, stop: int) -> None:
        """Refuse NaN/infinite network outputs (damaged weights, or inputs the network cannot
        handle) instead of labelling every pixel background."""
        if not bool(ok):
            raise InputError(
                getattr(pullback, "source", None),
                f"the network gave NaN/infinite outputs for frames {start}:{stop} "
                f"(checkpoint {self.source or 'in memory'}); no labels written",
            )

    def model_only(self, grid: torch.Tensor) -> int:
        """Run the network (with TTA) over ``grid`` and discard the output; for benchmarks."""
        n = grid.shape[0]
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            p = self.probabilities(self.network_inputs(grid, start, stop))
            if self.device.type == "cuda":
                p.argmax(dim=1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return n

    def describe(self) -> dict[str, Any]:
        from octseg.model.shipped import ensemble_named

        members = [m["checkpoint"] for m in self.meta.get("ensemble") or ()]
        weights = self.meta.get("ensemble_weights")  # class weights (octseg.model.ensemble)
        named = ensemble_named(members) if members else None  # e.g. octseg-calcium-v2
        return {
            "checkpoint": self.source,
            **({"ensemble": members} if members else {}),
            **({"shipped_ensemble": named} if named else {}),
            **({"ensemble_weights": weights} if weights else {}),
            "classes": self.classes,
            "context_frames": self.k,
            "net_grid": self.net_grid,
            **(
                {"trained_n_alines": self.trained_alines}
                if self.trained_alines != self.net_grid["n_alines"]
                else {}
            ),
            "device": str(self.device),
            "batch_size": self.batch_size,
            "amp": None if self.amp is None else str(self.amp).replace("torch.", ""),
            "channels_last": self.channels_last,
            "tta": [list(t) for t in self.tta],
            "resample": self.resample,
        }


class GridStream:
    """The frames of one pullback on the net grid, published chunk by chunk by a reader thread.

    ``tensor`` is allocated whole up front (the frame count is known once the file is opened);
    the reader writes frames in order and calls :meth:`publish` (frames ``0..stop-1`` ready) or
    :meth:`fail`; the consumer calls :meth:`wait` before it uses frames, which raises the
    reader's error, if any."""

    def __init__(self, tensor: torch.Tensor):
        import threading

        self.tensor = tensor
        self.ready = 0
        self.error: BaseException | None = None
        self.t_complete = float("nan")  # time.perf_counter() when the last frame was published
        self._cond = threading.Condition()

    @property
    def n_frames(self) -> int:
        return int(self.tensor.shape[0])

    def publish(self, stop: int) -> None:
        with self._cond:
            self.ready = max(self.ready, int(stop))
            if self.ready >= self.n_frames and self.t_complete != self.t_complete:
                self.t_complete = time.perf_counter()
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self.error = exc
            self._cond.notify_all()

    def wait(self, stop: int, timeout: float | None = None) -> None:
        """Block until frames ``0..stop-1`` are ready; raise the reader's error instead."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.error is None and self.ready < stop:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"frames up to {stop} not ready after {timeout} s")
                self._cond.wait(0.5 if left is None else min(0.5, left))
            if self.error is not None:
                raise self.error


class _LabelSink:
    """Where :meth:`Predictor.segment` puts each batch's labels: the ``(F, H, W)`` uint8 array
    :attr:`labels` on the host, every batch checked for NaN/infinite network outputs.

    On CUDA the labels come back through two pinned host buffers with non-blocking copies:
    batch ``i`` is copied while batch ``i + 1`` is computed (:meth:`flush` waits for the last)."""

    def __init__(self, predictor: Predictor, pullback: Any, n: int):
        self.predictor, self.pullback = predictor, pullback
        self.labels = np.empty((n, pullback.height, pullback.width), dtype=np.uint8)
        self.bufs: list[torch.Tensor] = []
        if predictor.device.type == "cuda":
            shape = (min(predictor.batch_size, n), pullback.height, pullback.width)
            self.bufs = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        self.n_put = 0
        self.pending: tuple[torch.Tensor, Any, torch.Tensor, int, int] | None = None

    def put(self, q: torch.Tensor, ok: torch.Tensor, start: int, stop: int) -> None:
        """Labels ``q`` of frames ``start..stop-1``; ``ok``: the network's outputs were finite."""
        if not self.bufs:
            self.predictor._check_finite(ok, self.pullback, start, stop)
            self.labels[start:stop] = q.numpy()
            return
        host = self.bufs[self.n_put % 2]
        self.n_put += 1
        host[: stop - start].copy_(q, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self.flush()
        self.pending = (host, event, ok, start, stop)

    def flush(self) -> None:
        """Wait for the batch still being copied (CUDA) and store it."""
        if self.pending is None:
            return
        host, event, ok, a, b = self.pending
        self.pending = None
        event.synchronize()
        self.predictor._check_finite(ok, self.pullback, a, b)
        self.labels[a:b] = host[: b - a].numpy()


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device`` (through pinned memory, non-blocking, on CUDA)."""
    x = torch.from_numpy(array)
    if device.type == "cuda":
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


def _argmax_channels(p: torch.Tensor) -> torch.Tensor:
    """``p.argmax(dim=1)`` of (B, C, H, W): the same indices (first maximum), but on the CPU
    through a channels-last copy, as the reduction over a strided channel axis is ~7x slower."""
    if p.device.type != "cpu":
        return p.argmax(dim=1)
    return p.permute(0, 2, 3, 1).contiguous().argmax(dim=-1)


def save_untrained_checkpoint(
    path: str | Path,
    *,
    model_cfg: Mapping[str, Any] | None = None,
    classes: list[int] | None = None,
    context_frames: int = 3,
    net_grid: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """A checkpoint of a randomly initialised network, in the training format.

    For benchmarks (throughput does not depend on the weights) and tests; ``model_cfg`` defaults to
    ``configs/model/unet.yaml``'s network. The predictions of such a model are meaningless.
    """
    from octseg.model.checkpoint import save_checkpoint
    from octseg.model.networks import build_from_parts, net_config, wrap_config

    if model_cfg is None:
        model_cfg = {
            "net": {
                "_target_": "monai.networks.nets.UNet",
                "spatial_dims": 2,
                "channels": [16, 32, 64, 128],
                "strides": [2, 2, 2],
                "num_res_units": 1,
                "norm": "batch",
            },
            "pad_alines": 16,
            "multiple": 8,
        }
    classes = list(classes or [0, 1, 2, 3, 4])
    net_grid = dict(net_grid or {"n_alines": 128, "n_samples": 160, "spacing_mm": 0.03})
    torch.manual_seed(seed)
    net = net_config(model_cfg, context_frames, len(classes))
    wrap = wrap_config(model_cfg)
    model = build_from_parts(net, wrap).eval()
    meta = {
        "model": net,
        "wrap": wrap,
        "classes": classes,
        "class_names": [str(c) for c in classes],
        "context_frames": int(context_frames),
        "net_grid": net_grid,
        "normalization": {"kind": "none"},
        "epoch": 0,
        "metrics": {},
        "untrained": True,
    }
    save_checkpoint(path, model, meta)
    return Path(path)
