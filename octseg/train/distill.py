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

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from octseg.core.errors import InputError
from octseg.model.wrap import main_output


def kl_to_teacher(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of ``(B, C, H, W)`` class distributions, summed over the classes
    and averaged over the pixels (0 where the student says what the teacher says)."""
    log_student = torch.log_softmax(student_logits.float(), dim=1)
    log_teacher = torch.log(teacher_probs.clamp_min(1e-8))
    return (teacher_probs * (log_teacher - log_student)).sum(dim=1).mean()


@dataclass
class Teacher:
    """A frozen network whose probabilities on the clean view the student is held to."""

    model: nn.Module
    weight: float
    scale: float = 1.0  # the run's normalised input -> the teacher's: x * scale + shift
    shift: float = 0.0

    @torch.no_grad()
    def probabilities(self, clean: torch.Tensor) -> torch.Tensor:
        x = clean * self.scale + self.shift if (self.scale, self.shift) != (1.0, 0.0) else clean
        return torch.softmax(main_output(self.model(x)).float(), dim=1)

    def loss(self, student_out: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
        """``weight`` x KL of the student's main output from the teacher's probabilities
        (:meth:`probabilities` of the clean view)."""
        return self.weight * kl_to_teacher(main_output(student_out), teacher_probs)


def build_teacher(cfg_distill: Any, meta: dict[str, Any], device: torch.device) -> Teacher | None:
    """The teacher of ``distill`` settings (``checkpoint``: a file or a shipped model's name;
    ``weight`` > 0) for a run whose checkpoint meta is ``meta``; None when ``checkpoint`` is
    unset. InputError naming the file when it cannot teach this run."""
    from octseg.model.checkpoint import load_checkpoint
    from octseg.model.ensemble import check_compatible, input_map
    from octseg.model.shipped import resolve

    settings = dict(cfg_distill or {})
    name = settings.get("checkpoint")
    if not name:
        return None
    weight = float(settings.get("weight", 1.0))
    if not weight > 0:
        raise InputError(name, f"distill.weight={weight!r}: give a weight > 0")
    path = resolve(str(name))
    model, teacher_meta = load_checkpoint(path)
    check_compatible(meta, teacher_meta, "this run", str(path))
    scale, shift = input_map(meta.get("normalization"), teacher_meta.get("normalization"))
    model = model.to(device).eval().requires_grad_(False)
    return Teacher(model, weight, scale, shift)
