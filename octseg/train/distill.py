"""Fine-tuning without forgetting (``distill.checkpoint``; docs/finetune.md).

A fine-tune that must learn something new (hard appearances, a user's labels) tends to forget
what the model it starts from did well. Learning without forgetting (Li & Hoiem 2017) keeps it: a
frozen copy of a model (the teacher, usually the ``init_from`` checkpoint) reads each training
frame and the loss adds ``weight`` x the Kullback-Leibler divergence of the student's class
probabilities from the teacher's, averaged over the pixels.

The teacher reads the frame as the geometric augmentation left it, *before* the appearance
transforms (:class:`octseg.train.augment.CleanView`): the student is taught to read a corrupted
frame as the teacher reads the clean one, while the labels still teach every class. The teacher
must predict the same classes from the same input (``classes``, ``context_frames``, ``net_grid``,
as an ensemble's members: :func:`octseg.model.ensemble.check_compatible`); its own grey-value
normalisation is honoured (:func:`octseg.model.ensemble.input_map`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from octseg.core.errors import InputError
from octseg.model.wrap import main_output


def kl_to_teacher(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of ``(B, C, H, W)`` class distributions, summed over the classes
    and averaged over the pixels (0 where the student says what the teacher says)."""
    log_student = torch.log_softmax(student_logits.float(), dim=1)
    kl = torch.nn.functional.kl_div(log_student, teacher_probs, reduction="none")
    return kl.sum(dim=1).mean()


@dataclass
class Teacher:
    """A frozen network whose probabilities on the clean view the student is held to."""

    model: nn.Module
    weight: float
    scale: float = 1.0  # the run's normalised input -> the teacher's: x * scale + shift
    shift: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)  # what the checkpoint meta keeps

    @torch.no_grad()
    def probabilities(self, clean: torch.Tensor) -> torch.Tensor:
        x = clean * self.scale + self.shift if (self.scale, self.shift) != (1.0, 0.0) else clean
        return torch.softmax(main_output(self.model(x)).float(), dim=1)

    def loss(self, student_out: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
        """``weight`` x KL of the student's main output from the teacher's probabilities
        (:meth:`probabilities` of the clean view)."""
        return self.weight * kl_to_teacher(main_output(student_out), teacher_probs)


def distill_weight(value: Any) -> float:
    """``distill.weight`` as a float, finite and > 0 (InputError naming the setting)."""
    try:
        weight = float("nan") if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        weight = float("nan")
    if not (math.isfinite(weight) and weight > 0):
        raise InputError(None, f"distill.weight={value!r}: give a finite number > 0")
    return weight


def teacher_record(cfg_distill: Any) -> dict[str, Any] | None:
    """What a checkpoint records of its teacher (no network loaded): the shipped model's name or
    the file's resolved path, and the weight (checked); None without ``distill.checkpoint``."""
    from octseg.model.shipped import model_with_content, resolve

    settings = dict(cfg_distill or {})
    if not settings.get("checkpoint"):
        return None
    weight = distill_weight(settings.get("weight", 1.0))
    path = resolve(str(settings["checkpoint"]))
    name = model_with_content(path) or str(Path(path).resolve())
    return {"checkpoint": name, "weight": weight}


def build_teacher(cfg_distill: Any, meta: dict[str, Any], device: torch.device) -> Teacher | None:
    """The teacher of ``distill`` settings (``checkpoint``: a file or a shipped model's name;
    ``weight``: finite, > 0, default 1) for a run whose checkpoint meta is ``meta``; None when
    ``checkpoint`` is unset. InputError naming the file when it cannot teach this run."""
    from octseg.model.checkpoint import load_checkpoint
    from octseg.model.ensemble import input_map
    from octseg.model.shipped import resolve

    record = teacher_record(cfg_distill)
    if record is None:
        return None
    path = resolve(str(dict(cfg_distill)["checkpoint"]))
    model, teacher_meta = load_checkpoint(path)
    _check_teacher(meta, teacher_meta, path)
    scale, shift = input_map(meta.get("normalization"), teacher_meta.get("normalization"))
    model = model.to(device).eval().requires_grad_(False)
    return Teacher(model, record["weight"], scale, shift, record)


def _check_teacher(meta: dict[str, Any], teacher_meta: dict[str, Any], path: str) -> None:
    """The teacher must read the run's input and predict its classes (the keys an ensemble's
    members share, :data:`octseg.model.ensemble.SHARED_META`)."""
    from octseg.model.ensemble import differing_key

    key = differing_key(meta, teacher_meta)
    if key is not None:
        raise InputError(
            path,
            f"distill.checkpoint: this teacher's {key} {teacher_meta.get(key)!r} differs "
            f"from the run's {meta.get(key)!r}",
        )


def check_resumed(resumed_meta: dict[str, Any] | None, record: dict[str, Any] | None) -> None:
    """A resumed run (``ckpt_path``) keeps the teacher it started with: InputError naming the
    setting when ``distill`` now says otherwise (``record``: :func:`teacher_record`; another
    teacher or weight, or none)."""
    if resumed_meta is None:
        return
    was = resumed_meta.get("distill")
    if was != record:
        raise InputError(
            None,
            f"distill: the resumed run was trained with {was or 'no teacher'} and the config "
            f"gives {record or 'none'}; resume with the same distill.checkpoint / distill.weight",
        )
