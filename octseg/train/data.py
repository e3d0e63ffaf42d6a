"""Training data: labelled pullbacks (the dataset layout of docs/dataset.md) on the net grid.

* Every pullback is read once (``octseg.io.read_pullback``), its labelled frames and their 2.5D
  neighbours resampled onto the fixed net grid (:mod:`octseg.model.grid`) and kept in memory
  as float16 (grey values in [0, 1]); label maps are mapped to model channels.
* A sample is one **labelled** frame: the input stacks ``k`` neighbouring frames as channels
  (frames beyond the pullback ends replicate the end frame), the target is the centre frame's
  label map. Sparse labels (``frame_index``) work naturally: only labelled frames are targets,
  unlabelled neighbours still feed the context.
* Classes: ``classes`` lists the dataset class indices the model predicts (channel ``c`` =
  ``classes[c]``; it must start with 0, background). ``remap`` merges dataset classes first
  (e.g. ``{3: 1}`` for a lumen-only model: struts count as lumen); any class not in ``classes``
  after remapping becomes background. Keep the guidewire class 4 as a class (docs/training.md):
  merged into lumen or background it makes the measured lumen area wrong.
* Train/validation split by pullback, never by frame.
* Few labels (:func:`choose_labelled`): ``data.labelled_frames`` names the training frames to
  learn from per pullback, ``data.max_labelled_frames`` keeps at most N of them (evenly spaced);
  the other frames stay in memory only as 2.5D context of the chosen ones.
"""

from __future__ import annotations

import json
import logging
import random
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from octseg.core.classes import NUM_CLASSES
from octseg.core.errors import InputError
from octseg.io.labels import load_labels
from octseg.model.grid import cartesian_to_net_grid, check_net_grid, normalize, to_net_grid
from octseg.train.augment import apply_augmentation, clean_view, seed_augmentation


def class_lut(classes: Sequence[int], remap: Mapping[int, int] | None = None) -> np.ndarray:
    """Lookup table dataset class value (0..255) -> model channel."""
    lut = np.zeros(256, dtype=np.uint8)
    chan = {c: i for i, c in enumerate(classes)}
    for v in range(NUM_CLASSES):
        tgt = int(remap.get(v, v)) if remap else v
        lut[v] = chan.get(tgt, 0)
    return lut


@dataclass
class CachedPullback:
    id: str
    images: np.ndarray  # (n_cached, A', R') float16 in [0, 1]
    rows: dict[int, int]  # pullback frame -> row of ``images``
    n_frames: int
    labels: np.ndarray  # (L, A', R') uint8, model channels
    label_frames: np.ndarray  # (L,) pullback frame numbers


def context_frames(t: int, k: int, n_frames: int) -> list[int]:
    """The k frames centred on t, replicating the end frames."""
    h = k // 2
    return [min(max(t + d, 0), n_frames - 1) for d in range(-h, h + 1)]


def _check_labels(entry: Any, pb: Any, lf: Any) -> None:
    """The label file must describe the image's pixels (space, size, catheter centre) and
    frames."""
    if lf.space != pb.space or tuple(lf.labels.shape[1:]) != (pb.height, pb.width):
        raise InputError(
            entry.labels_path,
            f"labels ({lf.space}, {lf.labels.shape[1:]}) do not match the image "
            f"({pb.space}, {(pb.height, pb.width)})",
        )
    if pb.space == "cartesian":
        # both files place the catheter centre; they describe the same pixels, so it must agree
        img_c, lab_c = pb.catheter_center, lf.center
        if max(abs(img_c[0] - lab_c[0]), abs(img_c[1] - lab_c[1])) > 0.5:
            raise InputError(
                entry.labels_path,
                f"labels' catheter_center {tuple(round(v, 2) for v in lab_c)} differs from the "
                f"image's {tuple(round(v, 2) for v in img_c)} (pixels [cy, cx])",
            )
    frames = lf.frames
    if frames.size and (frames.min() < 0 or frames.max() >= pb.n_frames):
        raise InputError(
            entry.labels_path,
            f"frame_index {int(frames.max())} outside the image's {pb.n_frames} frames",
        )


def _runs(needed: Sequence[int], chunk: int) -> list[tuple[int, int]]:
    """(first, last) indices into the sorted ``needed`` of its runs of consecutive frames, at
    most ``chunk`` frames each."""
    runs, i = [], 0
    while i < len(needed):
        j = i
        while j + 1 < len(needed) and needed[j + 1] == needed[j] + 1 and j + 1 - i < chunk:
            j += 1
        runs.append((i, j))
        i = j + 1
    return runs


def load_pullback(
    entry: Any,
    net_grid: Mapping[str, Any],
    k: int,
    lut: np.ndarray,
    chunk: int = 32,
    frames: Sequence[int] | None = None,
) -> CachedPullback:
    """Read one dataset entry onto the net grid (labelled frames and their neighbours only);
    ``frames``: only these labelled frames become targets (see :func:`choose_labelled`)."""
    from octseg.io import read_pullback

    grid = check_net_grid(net_grid)
    if entry.labels_path is None:
        raise InputError(entry.image_path, "pullback has no labels.npz")
    pb = read_pullback(entry.image_path)
    lf = load_labels(entry.labels_path)
    _check_labels(entry, pb, lf)
    keep = _keep_rows(entry.labels_path, lf.frames, frames)
    frames = lf.frames[keep]
    needed = sorted({f for t in frames.tolist() for f in context_frames(t, k, pb.n_frames)})

    def to_grid(x: torch.Tensor, center: tuple[float, float] | None = pb.catheter_center):
        if pb.space == "polar":
            return to_net_grid(x, pb.pixel_spacing_mm, grid)
        return cartesian_to_net_grid(x, pb.pixel_spacing_mm, grid, center)

    images = np.zeros((len(needed), grid["n_alines"], grid["n_samples"]), dtype=np.float16)
    for i, j in _runs(needed, chunk):  # contiguous runs of needed frames, in chunks
        block = pb.read(needed[i], needed[j] + 1)
        images[i : j + 1] = to_grid(torch.from_numpy(np.ascontiguousarray(block))).numpy()
    lab_center = lf.center if pb.space == "cartesian" else None
    chosen = torch.from_numpy(lut[lf.labels[keep]])
    labels = to_grid(chosen, lab_center).numpy().astype(np.uint8)
    return CachedPullback(
        id=str(entry.id),
        images=images,
        rows={f: i for i, f in enumerate(needed)},
        n_frames=pb.n_frames,
        labels=labels,
        label_frames=np.asarray(frames, dtype=np.int64),
    )


def _keep_rows(path: Any, have: np.ndarray, wanted: Sequence[int] | None) -> np.ndarray:
    """Rows of a label file to use: all, or those of the ``wanted`` frames (each must have a
    label map)."""
    if wanted is None:
        return np.arange(len(have))
    wanted = np.asarray(sorted({int(f) for f in wanted}), dtype=np.int64)
    missing = np.setdiff1d(wanted, have)
    if missing.size:
        raise InputError(
            path, f"frames {missing.tolist()[:10]} chosen for training have no label map"
        )
    return np.flatnonzero(np.isin(have, wanted))


def label_frame_index(path: str | Path) -> np.ndarray:
    """The frames a ``labels.npz`` labels (``frame_index``, else 0..F-1), read without the
    label maps."""
    from octseg.io.npz import npy_header

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "frame_index.npy" in names:
                with zf.open("frame_index.npy") as fh:
                    return np.lib.format.read_array(fh, allow_pickle=False).astype(np.int64)
            with zf.open("labels.npy") as fh:
                return np.arange(npy_header(fh)[0][0], dtype=np.int64)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(path, f"cannot read the labelled frames ({exc})") from None


def read_labelled_spec(spec: Any) -> dict[str, list[int]] | None:
    """``data.labelled_frames``: None, a ``{pullback_id: [frames]}`` mapping, or the path of a
    JSON file holding one."""
    if spec is None:
        return None
    source = _spec_file(spec)
    if source is not None:
        try:
            spec = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                source, f"data.labelled_frames: not a readable JSON file ({exc})"
            ) from None
    if not isinstance(spec, Mapping):
        raise InputError(
            source, "data.labelled_frames must map pullback ids to lists of frame numbers"
        )
    try:
        return {str(k): sorted({int(f) for f in v}) for k, v in spec.items()}
    except (TypeError, ValueError):
        raise InputError(source, f"data.labelled_frames has a non-integer frame: {spec}") from None


def _spec_file(spec: Any) -> str | Path | None:
    """The JSON file ``data.labelled_frames`` names, or None for an inline mapping."""
    return spec if isinstance(spec, (str, Path)) else None


def evenly_spaced(n_total: int, n: int) -> np.ndarray:
    """``n`` indices of ``range(n_total)`` spread evenly (centres of ``n`` equal bins)."""
    return ((np.arange(n) + 0.5) * n_total / n).astype(np.int64)


def choose_labelled(
    entries: Sequence[Any], spec: Any = None, max_frames: int | None = None
) -> dict[str, np.ndarray]:
    """Per training pullback, the labelled frames to learn from: every frame its labels.npz
    labels, or those ``spec`` (``data.labelled_frames``) lists (pullbacks it omits give none);
    then at most ``max_frames`` in all, evenly spaced over the pullbacks in id order."""
    chosen = {str(e.id): label_frame_index(e.labels_path) for e in entries}
    wanted = read_labelled_spec(spec)
    if wanted is not None:
        chosen = _only_wanted(entries, chosen, wanted, _spec_file(spec))
    if max_frames is not None:
        chosen = _at_most(chosen, max_frames)
    if not any(len(v) for v in chosen.values()):
        raise InputError(None, "no labelled training frame left (data.labelled_frames)")
    return chosen


def _only_wanted(
    entries: Sequence[Any],
    chosen: dict[str, np.ndarray],
    wanted: dict[str, list[int]],
    source: str | Path | None,
) -> dict[str, np.ndarray]:
    """``chosen`` restricted to the ``wanted`` frames (none for pullbacks ``wanted`` omits)."""
    unknown = sorted(set(wanted) - set(chosen))
    if unknown:
        raise InputError(source, f"data.labelled_frames names pullbacks not in training: {unknown}")
    paths = {str(e.id): e.labels_path for e in entries}
    return {
        i: have[_keep_rows(paths[i], have, wanted[i])] if i in wanted else have[:0]
        for i, have in chosen.items()
    }


def _at_most(chosen: dict[str, np.ndarray], max_frames: Any) -> dict[str, np.ndarray]:
    """At most ``max_frames`` of the chosen (pullback, frame) pairs, evenly spaced in id order."""
    n = int(max_frames)
    if n < 1:
        raise InputError(None, f"data.max_labelled_frames must be >= 1, got {max_frames}")
    flat = [(i, int(f)) for i in sorted(chosen) for f in chosen[i]]
    if len(flat) <= n:
        return chosen
    picked = [flat[j] for j in evenly_spaced(len(flat), n)]
    return {i: np.asarray([f for p, f in picked if p == i], dtype=np.int64) for i in chosen}


class PullbackFrames(Dataset):
    """Labelled frames of cached pullbacks as (image (k, A', R'), label (1, A', R')) samples."""

    def __init__(
        self,
        pullbacks: Sequence[CachedPullback],
        k: int,
        normalization: Mapping[str, Any],
        augment: Any = None,
        keep_clean: bool = False,
    ):
        """``keep_clean``: each sample also holds ``clean_image``, the frame before the
        appearance transforms (a distillation teacher's input, :mod:`octseg.train.distill`)."""
        if k < 1 or k % 2 == 0:
            raise ValueError(f"context_frames must be odd and >= 1, got {k}")
        self.pullbacks = list(pullbacks)
        self.k = int(k)
        self.normalization = dict(normalization)
        self.augment = augment
        self.keep_clean = bool(keep_clean)
        self.index = [
            (p, r) for p, pb in enumerate(self.pullbacks) for r in range(len(pb.label_frames))
        ]

    def __len__(self) -> int:
        return len(self.index)

    def reseed(self, seed: int) -> None:
        seed_augmentation(self.augment, seed)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-augmented (A', R', k) float32 image in [0, 1] and (A', R') channel mask."""
        p, r = self.index[i]
        pb = self.pullbacks[p]
        t = int(pb.label_frames[r])
        idx = [pb.rows[f] for f in context_frames(t, self.k, pb.n_frames)]
        img = np.ascontiguousarray(pb.images[idx].astype(np.float32).transpose(1, 2, 0))
        return img, pb.labels[r]

    def __getitem__(self, i: int) -> dict[str, Any]:
        img, mask = self.raw(i)
        aug, mask = apply_augmentation(self.augment, img, mask)
        out = self.sample(i, aug, mask)
        if self.keep_clean:
            out["clean_image"] = self._tensor(clean_view(self.augment, aug))
        return out

    def _tensor(self, img: np.ndarray) -> torch.Tensor:
        """An (A', R', k) image in [0, 1] as the network's normalised (k, A', R') input."""
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return normalize(x, self.normalization).float()

    def sample(self, i: int, img: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        """The sample dict of frame ``i`` from its (possibly augmented) image and mask."""
        y = torch.from_numpy(np.ascontiguousarray(mask)).long().unsqueeze(0)
        p, r = self.index[i]
        return {
            "image": self._tensor(img),
            "label": y,
            "pullback": p,
            "frame": int(self.pullbacks[p].label_frames[r]),
        }


def oversample(ds: PullbackFrames, times: Mapping[int, int]) -> int:
    """Draw each training frame of ``ds`` whose label holds model channel ``c`` ``times[c]``
    times per epoch (the largest factor among its channels; each draw augmented afresh) by
    repeating it in ``ds.index``. Returns how many frames are repeated."""
    extra: list[tuple[int, int]] = []
    n = 0
    for p, r in ds.index:
        lab = ds.pullbacks[p].labels[r]
        k = max((int(t) for c, t in times.items() if (lab == c).any()), default=1)
        if k > 1:
            n += 1
            extra += [(p, r)] * (k - 1)
    ds.index += extra
    return n


class ValidationFrames(PullbackFrames):
    """Validation frames, clean, followed by ``copies`` augmented versions of each drawn with a
    fixed seed per (copy, frame): the same samples every epoch, so a score over them (and the
    checkpoint it picks) rewards robustness to the appearance randomisation, not the luck of a
    draw. ``copies`` 0: the clean frames only."""

    def __init__(self, pullbacks, k, normalization, augment=None, copies: int = 0, seed: int = 0):
        super().__init__(pullbacks, k, normalization, augment)
        self.copies = int(copies) if augment is not None else 0
        self.seed = int(seed)
        self.n_clean = len(self.index)

    def __len__(self) -> int:
        return self.n_clean * (1 + self.copies)

    def __getitem__(self, i: int) -> dict[str, Any]:
        copy, j = divmod(int(i), self.n_clean)
        img, mask = self.raw(j)
        if copy:
            seed_augmentation(self.augment, hash((self.seed, copy, j)))
            img, mask = apply_augmentation(self.augment, img, mask)
        return self.sample(j, img, mask)


def worker_init_fn(worker_id: int) -> None:
    """Seed numpy, random and the augmentation of a loader worker from its torch seed.

    The DataLoader gives worker ``w`` the seed ``base_seed + w`` where ``base_seed`` comes from
    the loader's generator: workers differ, and a seeded generator reproduces them.
    """
    info = torch.utils.data.get_worker_info()
    seed = int(info.seed) if info is not None else int(torch.initial_seed())
    np.random.seed(seed % 2**32)  # noqa: NPY002 (libraries use the global RNG)
    random.seed(seed)
    ds = info.dataset if info is not None else None
    while ds is not None and not isinstance(ds, PullbackFrames) and hasattr(ds, "dataset"):
        ds = ds.dataset
    if isinstance(ds, PullbackFrames):
        ds.reseed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(1)[0])


class EpochLoader:
    """A DataLoader whose order and augmentation depend only on (seed, epoch, rank).

    Shuffling uses a :class:`DistributedSampler` (also for one process), the worker seeds come
    from a generator re-seeded each epoch, and with ``num_workers=0`` the augmentation is
    re-seeded in the main process. Resuming at epoch ``e`` therefore replays epoch ``e`` exactly.
    """

    def __init__(
        self,
        dataset: PullbackFrames,
        *,
        batch_size: int,
        shuffle: bool,
        num_workers: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        pin_memory: bool = False,
    ):
        self.dataset = dataset
        self.seed = int(seed)
        self.rank = rank
        self.num_workers = int(num_workers)
        self.sampler = DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=self.seed,
            drop_last=drop_last and world_size > 1,
        )
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=self.num_workers,
            worker_init_fn=worker_init_fn,
            generator=self.generator,
            drop_last=drop_last and len(dataset) // world_size > batch_size,
            pin_memory=pin_memory,
            persistent_workers=False,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        s = epoch_seed(self.seed, epoch, self.rank)
        self.generator.manual_seed(s)
        if self.num_workers == 0:
            self.dataset.reseed(s)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def split_pullbacks(
    ids: Sequence[str],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    val_ids: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Split pullback ids into train and validation sets (by pullback, seeded)."""
    ids = sorted(str(i) for i in ids)
    if val_ids:
        val = [str(v) for v in val_ids]
        unknown = sorted(set(val) - set(ids))
        if unknown:
            raise InputError(None, f"validation pullbacks not in the dataset: {unknown}")
        return [i for i in ids if i not in set(val)], sorted(val)
    if len(ids) < 2:
        raise InputError(None, f"need at least 2 pullbacks to split train/val, got {len(ids)}")
    n_val = min(max(1, round(len(ids) * float(val_fraction))), len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:n_val])
    return [i for i in ids if i not in set(val)], val


def dataset_split(root: str | Path) -> tuple[list[str], list[str]]:
    """``(test, val)`` pullback ids that a dataset's own ``split.json`` names (written by
    ``octseg.datasets.danilov.build`` and the hybrid builder), or empty lists without one. Training
    never uses the ``test`` pullbacks; ``val`` is the validation set when ``data.val_ids`` is
    not given."""
    path = Path(root) / "split.json"
    if not path.is_file():
        return [], []
    try:
        split = json.loads(path.read_text())
        test, val = (sorted(str(i) for i in split.get(k) or []) for k in ("test", "val"))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(path, f"not a readable dataset split ({exc})") from None
    return test, val


def ensure_synthetic(root: str | Path, *, n: int, seed: int, preset: str = "small") -> Path:
    """The synthetic cohort ``octseg synth`` makes with these settings, generated unless ``root``
    already holds it (see :func:`octseg.datasets.synth.cohort.ensure_cohort`)."""
    from octseg.datasets.synth.cohort import ensure_cohort

    return ensure_cohort(root, n, seed, preset, log=logging.getLogger("octseg.train").info)


def list_entries(root: str | Path) -> list[Any]:
    from octseg.io.dataset import list_pullbacks

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    entries = [e for e in list_pullbacks(root) if e.labels_path is not None]
    if not entries:
        raise InputError(root, "no labelled pullbacks in the dataset")
    return entries
