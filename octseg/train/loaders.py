"""The data stage of a training run: the split by pullback, the pullbacks cached on the net
grid, the normalisation, and the training and validation loaders (see :mod:`.data` for the
pieces)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from octseg.core import atomic
from octseg.core import distributed as ddp
from octseg.core.classes import check_classes
from octseg.core.errors import InputError
from octseg.model.grid import check_net_grid, compute_normalization
from octseg.train.augment import build_augmentation
from octseg.train.data import (
    EpochLoader,
    PullbackFrames,
    ValidationFrames,
    choose_labelled,
    class_lut,
    dataset_split,
    ensure_synthetic,
    list_entries,
    load_pullback,
    oversample,
    split_pullbacks,
)
from octseg.train.settings import cfg_get, plain
from octseg.train.setup import check_init_matches, check_resume_matches


@dataclass
class RunData:
    """What the epochs consume, and what the checkpoint records about the data."""

    classes: list[int]
    context_frames: int
    net_grid: dict[str, Any]
    normalization: dict[str, Any]
    split: dict[str, Any]
    train_ds: PullbackFrames
    val_ds: PullbackFrames
    train_loader: EpochLoader
    val_loader: DataLoader


def _generate(cfg: DictConfig, root: Path, val_root: Any, info: ddp.DistInfo) -> None:
    """``data.generate``: write the synthetic cohort(s) if missing (rank 0), then wait."""
    gen = cfg_get(cfg, "data.generate")
    if gen and info.is_main:
        preset = gen.get("preset", "small")
        ensure_synthetic(root, n=int(gen["n"]), seed=int(gen["seed"]), preset=preset)
        if val_root and gen.get("n_val"):
            ensure_synthetic(
                val_root, n=int(gen["n_val"]), seed=int(gen["seed"]) + 1, preset=preset
            )
    ddp.barrier(info)


def _split_ids(
    cfg: DictConfig,
    root: Path,
    ids: list[str],
    resume: dict[str, Any] | None,
    own: tuple[list[str], list[str]],
    extra: frozenset[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """Train and validation pullback ids of ``root``: the resumed run's split, else
    ``data.val_ids``, else the dataset's own validation ids, else a seeded split. ``own``: the
    ``(test, val)`` ids of the dataset's ``split.json`` (:func:`dataset_split`); ``extra``: ids of
    ``data.extra_train_roots`` (a resumed split lists them too)."""
    split = resume["meta"].get("split") if resume else None
    test, own_val = own
    if split:
        train_ids, val_ids = list(split["train"]), list(split["val"])
        missing = sorted(set(train_ids + val_ids) - set(ids) - extra)
        held = [i for i in missing if i in test]
        if held:
            raise InputError(
                root / "split.json",
                f"the resumed run trained or validated on {held}, held out as test there now",
            )
        if missing:
            raise InputError(root, f"pullbacks of the resumed run's split are missing: {missing}")
        return [i for i in train_ids if i not in extra], val_ids
    val_ids = cfg_get(cfg, "data.val_ids")
    clash = sorted({str(i) for i in val_ids or []} & set(test))
    if clash:
        raise InputError(
            root / "split.json", f"data.val_ids {clash} are held out as test pullbacks there"
        )
    val_ids = val_ids or [i for i in own_val if i in ids]
    return split_pullbacks(
        ids,
        val_fraction=float(cfg_get(cfg, "data.val_fraction", 0.2)),
        seed=int(cfg.seed),
        val_ids=val_ids or None,
    )


def _without_test(root: Path, entries: dict[str, Any], test: list[str]) -> dict[str, Any]:
    """``entries`` less the pullbacks the dataset's ``split.json`` holds out as ``test``."""
    kept = {i: e for i, e in entries.items() if i not in test}
    if len(kept) < len(entries):
        logging.getLogger("octseg.train").info(
            "not training or validating on %s: held out as test in %s",
            ", ".join(sorted(set(entries) - set(kept))),
            root / "split.json",
        )
    return kept


def load_split(
    cfg: DictConfig, info: ddp.DistInfo, resume: dict[str, Any] | None
) -> tuple[list[Any], list[Any], dict]:
    """Training entries, validation entries and the split record (``split.json``):
    ``data.val_root`` when given, else a split of ``data.root`` by pullback."""
    root = Path(str(cfg.data.root))
    val_root = cfg_get(cfg, "data.val_root")
    _generate(cfg, root, val_root, info)
    own = dataset_split(root)
    entries = _without_test(root, {e.id: e for e in list_entries(root)}, own[0])
    extra_roots = [str(r) for r in plain(cfg_get(cfg, "data.extra_train_roots")) or []]
    extra = _extra_train(extra_roots, set(entries))
    split: dict[str, Any] = {"root": str(root), "val_root": None}
    if extra_roots:
        split["extra_train_roots"] = extra_roots
    if val_root:
        val_entries = {e.id: e for e in list_entries(val_root)}
        train_ids, val_ids = sorted(entries), sorted(val_entries)
        split["val_root"] = str(val_root)
    else:  # one folder: the validation pullbacks are some of its own
        train_ids, val_ids = _split_ids(cfg, root, list(entries), resume, own, frozenset(extra))
        assert not set(train_ids) & set(val_ids)
        val_entries = entries
    train_ids += sorted(extra)
    split.update(train=train_ids, val=val_ids)
    everything = {**entries, **extra}
    return [everything[i] for i in train_ids], [val_entries[i] for i in val_ids], split


def _extra_train(roots: list[str], have: set[str]) -> dict[str, Any]:
    """Labelled pullbacks of ``data.extra_train_roots``: training only, never validation (e.g.
    hybrid frames beside a real dataset); their ids must differ from every other pullback's."""
    out: dict[str, Any] = {}
    for root in roots:
        for e in list_entries(root):
            if e.id in have or e.id in out:
                raise InputError(root, f"pullback id {e.id!r} is also in another training folder")
            out[e.id] = e
    return out


def _loaders(
    cfg: DictConfig, info: ddp.DistInfo, train_ds: PullbackFrames, val_ds: PullbackFrames
) -> tuple[EpochLoader, DataLoader]:
    """The training loader (reshuffled and sharded per epoch and rank) and this rank's shard
    of the validation frames."""
    bs = int(cfg.data.batch_size)
    workers = int(cfg_get(cfg, "data.num_workers", 0))
    pin = bool(cfg_get(cfg, "data.pin_memory", False)) and info.device.type == "cuda"
    train_loader = EpochLoader(
        train_ds,
        batch_size=bs,
        shuffle=True,
        num_workers=workers,
        seed=int(cfg.seed),
        rank=info.rank,
        world_size=info.world_size,
        drop_last=bool(cfg_get(cfg, "data.drop_last", True)),
        pin_memory=pin,
    )
    val_shard = Subset(val_ds, list(range(info.rank, len(val_ds), info.world_size)))
    val_loader = DataLoader(
        val_shard,
        batch_size=int(cfg_get(cfg, "data.val_batch_size", bs)),
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
    )
    return train_loader, val_loader


def oversample_channels(spec: Any, classes: list[int]) -> dict[int, int]:
    """``data.oversample`` (``{dataset class: times}``, e.g. ``{2: 3}``: frames with calcium
    three times per epoch) as ``{model channel: times}``; checked."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise InputError(None, f"data.oversample must be a mapping {{class: times}}, got {spec!r}")
    out = {}
    for c, t in spec.items():
        if not isinstance(c, int) or c not in classes[1:]:
            raise InputError(
                None, f"data.oversample: class {c!r} is not a predicted class {classes}"
            )
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise InputError(None, f"data.oversample: times for class {c} must be an integer >= 1")
        out[classes.index(c)] = t
    return out


def _oversample(cfg: DictConfig, classes: list[int], ds: PullbackFrames, info) -> None:
    """Apply ``data.oversample`` to the training frames and log what it did."""
    spec = plain(cfg_get(cfg, "data.oversample"))
    times = oversample_channels(spec, classes)
    if not times:
        return
    n_frames = len(ds)
    n = oversample(ds, times)
    if info.is_main:
        logging.getLogger("octseg.train").info(
            "data.oversample %s: %d of %d training frames repeated, %d draws per epoch",
            spec, n, n_frames, len(ds),
        )  # fmt: skip


def _labelled(cfg: DictConfig, entries: list[Any], split: dict) -> dict[str, Any]:
    """The training frames to learn from (``data.labelled_frames``, ``data.max_labelled_frames``),
    recorded in ``split["labelled_frames"]`` when either is set."""
    spec = cfg_get(cfg, "data.labelled_frames")
    max_n = cfg_get(cfg, "data.max_labelled_frames")
    if spec is None and max_n is None:
        return {e.id: None for e in entries}
    chosen = choose_labelled(entries, spec, max_n)
    split["labelled_frames"] = {i: v.tolist() for i, v in chosen.items() if len(v)}
    return chosen


def build_data(
    cfg: DictConfig,
    info: ddp.DistInfo,
    out_dir: Path,
    resume: dict[str, Any] | None,
    init: dict[str, Any] | None = None,
) -> RunData:
    """Split (``split.json``), load and cache the pullbacks, normalise (the resumed or initial
    checkpoint's normalisation when given), and build the datasets and loaders."""
    classes = check_classes(plain(cfg.data.classes))
    k = int(cfg.data.context_frames)
    net_grid = check_net_grid(plain(cfg.data.net_grid))
    check_resume_matches(resume, classes=classes, context_frames=k, net_grid=net_grid)
    new_head = bool(cfg_get(cfg, "init_new_head", False))
    new_grid = bool(cfg_get(cfg, "init_new_grid", False))
    check_init_matches(init, new_head, classes, k, net_grid, new_grid)
    lut = class_lut(classes, cfg_get(cfg, "data.remap"))
    train_entries, val_entries, split = load_split(cfg, info, resume)
    chosen = _labelled(cfg, train_entries, split)
    train_entries = [e for e in train_entries if chosen[e.id] is None or len(chosen[e.id])]
    if info.is_main:
        atomic.write_json(out_dir / "split.json", split)
    bar = dict(disable=not info.is_main, leave=False)
    train_cache = [
        load_pullback(e, net_grid, k, lut, frames=chosen[e.id])
        for e in tqdm(train_entries, desc="load train", **bar)
    ]
    val_cache = [
        load_pullback(e, net_grid, k, lut) for e in tqdm(val_entries, desc="load val", **bar)
    ]
    if resume or init:
        norm = dict((resume or init)["meta"]["normalization"])
    else:
        norm = compute_normalization(
            [pb.images for pb in train_cache], str(cfg_get(cfg, "data.normalization", "zscore"))
        )
    keep_clean = bool(cfg_get(cfg, "distill.checkpoint"))  # the teacher's view (train.distill)
    augment = build_augmentation(cfg_get(cfg, "data.augment"), keep_clean)
    train_ds = PullbackFrames(train_cache, k, norm, augment, keep_clean)
    _oversample(cfg, classes, train_ds, info)
    copies = int(cfg_get(cfg, "data.val_augment_copies", 0) or 0)
    val_aug = build_augmentation(cfg_get(cfg, "data.augment")) if copies > 0 else None
    val_ds = ValidationFrames(val_cache, k, norm, val_aug, copies, int(cfg.seed))
    train_loader, val_loader = _loaders(cfg, info, train_ds, val_ds)
    return RunData(classes, k, net_grid, norm, split, train_ds, val_ds, train_loader, val_loader)
