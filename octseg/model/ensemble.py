"""Several checkpoints as one model: their class probabilities averaged.

``infer.py checkpoint=[a.ckpt,b.ckpt,...]`` runs every member on each batch (after the same
test-time augmentation) and averages their softmax probabilities, as nnU-Net averages its folds.
Networks trained with different seeds or data disagree most where each is unsure, so the mean is
steadier than any one of them (docs/inference.md gives the measured effect).

Members must read the same frames and predict the same classes: ``classes``, ``context_frames``
and ``net_grid`` of their metas are equal, or :func:`load_models` refuses with an error naming the
file that differs. The networks may differ (size, architecture), and so may the grey-value
normalisation each was trained with (a z-score's mean and std come from its training data): the
predictor normalises the input as the first member says, and each other member gets it
re-normalised its own way (:func:`input_map`). The ensemble's recommended inference settings
(:mod:`octseg.model.recommended`) are those every member recommends alike; the others are left
to the infer config's defaults.

Class-wise member weights (``infer.py ensemble_weights={calcium:[1,0]}``): members that are good
at different classes (one reads calcium best, another holds the lumen on hard frames) can each
give the classes they are good at. A class's probability is the weighted mean of the members'
(the weights of a class are scaled to sum to 1; classes not listed: the plain mean), and the
per-pixel result is renormalised over the classes, so the classes still compete as in one model:
calcium weighted ``[1, 0]`` is the first member's calcium probability against the members' mean
background, not the first member's calcium mask (:func:`class_weight_matrix`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from octseg.core.classes import CLASS_NAMES
from octseg.core.errors import InputError
from octseg.model.recommended import META_KEY, recommended
from octseg.model.wrap import main_output

# what the members must share: the predictor reads these from the meta to build the input and
# map the output (octseg.model.predictor.Predictor._read_meta)
SHARED_META = ("classes", "context_frames", "net_grid")
# the smallest mean probability kept before the log: softmax(log p) gives back p above it
_TINY = 1e-12


class ProbabilityMean(nn.Module):
    """The mean of the members' softmax probabilities, returned as its logarithm: a softmax of
    the output (what :class:`~octseg.model.predictor.Predictor` takes) gives the mean back
    (with ``class_weights``: the class-wise weighted mean, renormalised over the classes)."""

    def __init__(
        self,
        members: Sequence[nn.Module],
        input_maps: Sequence[tuple[float, float]] | None = None,
        class_weights: torch.Tensor | None = None,
    ):
        """``input_maps``: per member, ``(scale, shift)`` taking the ensemble's input to the
        member's (``x * scale + shift``); None: every member reads the input as it is.
        ``class_weights``: ``(members, classes)``, each class's column summing to 1
        (:func:`class_weight_matrix`); None: equal weights."""
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two networks")
        self.members = nn.ModuleList(members)
        self.input_maps = [tuple(map(float, m)) for m in input_maps or [(1.0, 0.0)] * len(members)]
        if len(self.input_maps) != len(members):
            raise ValueError("one input map per member")
        if class_weights is not None and class_weights.shape[0] != len(members):
            raise ValueError("class weights: one row per member")
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc = None
        for i, (member, (scale, shift)) in enumerate(
            zip(self.members, self.input_maps, strict=True)
        ):
            xi = x if (scale, shift) == (1.0, 0.0) else x * scale + shift
            p = torch.softmax(main_output(member(xi)).float(), dim=1)
            if self.class_weights is not None:
                p = p * self.class_weights[i].view(1, -1, 1, 1)
            acc = p if acc is None else acc + p
        if self.class_weights is None:
            acc = acc / len(self.members)
        return torch.log(acc.clamp_min(_TINY))


def class_weight_matrix(
    weights: Mapping[str, Sequence[float]], classes: Sequence[int], n_members: int
) -> torch.Tensor:
    """``(n_members, len(classes))`` member weights per class from ``weights`` (class name, e.g.
    ``calcium``, -> one non-negative weight per member, not all 0), each class's column scaled
    to sum to 1; classes not named: equal weights. InputError naming the setting for a class the
    model does not predict, and as :func:`normalised_weights` says."""
    names = [CLASS_NAMES[c] for c in classes]
    out = torch.full((n_members, len(classes)), 1.0 / n_members)
    for name, w in normalised_weights(weights, n_members).items():
        if name not in names:
            where = f"ensemble_weights.{name}={_listed(weights[name])}"
            raise InputError(None, f"{where}: not a class of these models ({', '.join(names)})")
        out[:, names.index(name)] = torch.tensor(w)
    return out


def normalised_weights(weights: Any, n_members: int) -> dict[str, list[float]]:
    """``ensemble_weights`` checked and each class's weights scaled to sum to 1 (rounded to 6
    decimals: ``[1, 0]``, ``[1.0, 0.0]`` and ``[2, 0]`` are one setting). InputError naming the
    setting for what is not a mapping of known class names (:data:`CLASS_NAMES`) to one finite
    weight >= 0 per member, not all 0."""
    if not isinstance(weights, Mapping):
        raise InputError(
            None,
            f"ensemble_weights={weights!r}: a mapping of classes to weights, e.g. "
            "{calcium:[1,0]}",
        )
    out = {}
    for name, given in weights.items():
        where = f"ensemble_weights.{name}={_listed(given)}"
        if name not in CLASS_NAMES.values():
            known = ", ".join(CLASS_NAMES.values())
            raise InputError(None, f"{where}: not a class name (one of {known})")
        w = _member_weights(given, n_members, where)
        out[str(name)] = [round(float(v), 6) for v in w / w.sum()]
    return out


def _listed(given: Any) -> str:
    return repr(list(given)) if isinstance(given, (list, tuple)) else repr(given)


def _member_weights(given: Any, n_members: int, where: str) -> torch.Tensor:
    """One class's weights as a tensor, checked (count, finite, >= 0, not all 0)."""
    if not isinstance(given, (list, tuple)) or len(given) != n_members:
        raise InputError(None, f"{where}: give one weight per checkpoint ({n_members})")
    try:
        w = torch.tensor([float(v) for v in given], dtype=torch.float64)
    except (TypeError, ValueError):
        raise InputError(None, f"{where}: weights must be numbers") from None
    if not torch.isfinite(w.sum()) or (w < 0).any() or w.sum() <= 0:
        raise InputError(None, f"{where}: weights must be finite, >= 0 and not all 0")
    return w


def input_map(first: Mapping[str, Any] | None, member: Mapping[str, Any] | None) -> tuple:
    """``(scale, shift)`` taking an input normalised as ``first`` says to one normalised as
    ``member`` says; both normalisations are affine maps of the grey value
    (:func:`octseg.model.grid.normalize`, read off at grey 0 and 1)."""
    from octseg.model.grid import normalize

    def affine(norm):  # normalize(t) = a * t + b
        b = float(normalize(0.0, norm or {}))
        return float(normalize(1.0, norm or {})) - b, b

    (a0, b0), (ai, bi) = affine(first), affine(member)
    return ai / a0, bi - ai * b0 / a0


def checkpoint_paths(checkpoint: Any) -> list[str]:
    """``checkpoint`` (one path, or a list / tuple of them) as a list of path strings."""
    if isinstance(checkpoint, (list, tuple)):
        return [str(c) for c in checkpoint]
    return [str(checkpoint)]


def source_name(checkpoint: Any) -> str:
    """One name for the model in messages and ``describe()``: the path, or the members' paths
    joined by `` + ``."""
    return " + ".join(checkpoint_paths(checkpoint))


def load_models(
    checkpoint: Any, class_weights: Mapping[str, Sequence[float]] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, meta)`` of one checkpoint, or of the :class:`ProbabilityMean` of several (meta:
    the first member's, with ``ensemble`` listing the members and the recommendations they
    share; with ``class_weights`` (see :func:`class_weight_matrix`), ``ensemble_weights``: the
    weights of the named classes, scaled to sum to 1)."""
    from octseg.model.checkpoint import load_checkpoint

    paths = checkpoint_paths(checkpoint)
    if not paths:
        raise InputError(None, "no checkpoint given")
    if class_weights and len(paths) == 1:
        raise InputError(paths[0], "ensemble_weights need an ensemble (two or more checkpoints)")
    if len(paths) == 1:
        return load_checkpoint(paths[0])
    if len({Path(p).resolve() for p in paths}) < len(paths):
        raise InputError(paths[0], "an ensemble lists the same checkpoint twice")
    loaded = [load_checkpoint(p) for p in paths]
    first = loaded[0][1]
    for path, (_, meta) in zip(paths[1:], loaded[1:], strict=True):
        check_compatible(first, meta, paths[0], path)
    meta = dict(first)
    meta[META_KEY] = shared_recommendations([m for _, m in loaded], paths)
    meta["ensemble"] = [
        {"checkpoint": p, "recipe": m.get("recipe")}
        for p, (_, m) in zip(paths, loaded, strict=True)
    ]
    maps = [input_map(first.get("normalization"), m.get("normalization")) for _, m in loaded]
    matrix = None
    if class_weights:
        matrix = class_weight_matrix(class_weights, first["classes"], len(paths))
        meta["ensemble_weights"] = normalised_weights(class_weights, len(paths))
    return ProbabilityMean([model for model, _ in loaded], maps, matrix).eval(), meta


def check_compatible(
    first: Mapping[str, Any], meta: Mapping[str, Any], first_path: str, path: str
) -> None:
    """InputError naming ``path`` when its meta differs from the first member's in a key the
    predictor relies on (:data:`SHARED_META`)."""
    key = differing_key(first, meta)
    if key is not None:
        raise InputError(
            path,
            f"cannot be averaged with {first_path}: its {key} differs "
            f"({meta.get(key)!r} vs {first.get(key)!r})",
        )


def differing_key(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first of :data:`SHARED_META` (what a network reads and predicts) on which two
    checkpoint metas differ, else None."""
    return next((key for key in SHARED_META if a.get(key) != b.get(key)), None)


def shared_recommendations(
    metas: Sequence[Mapping[str, Any]], paths: Sequence[str]
) -> dict[str, Any]:
    """The recommended inference settings that every member gives, with the same value."""
    recs = [recommended(m, p) for m, p in zip(metas, paths, strict=True)]
    return {k: v for k, v in recs[0].items() if all(r.get(k, object()) == v for r in recs[1:])}
