"""Calcium arc extension on the net grid: hysteresis along the A-lines.

A network that finds a calcium lesion often stops short of its ends, where the lesion thins and
fades: there its calcium probability is below that of tissue but well above the background's
(docs/calcium_candidates.md, eighteenth session: every model read the hybrid held-out arcs
9-11° short, and most of it is the ends of lesions it found). :func:`extend_calcium` grows each
calcium lesion along the A-line axis, as hysteresis thresholding does (a confident core, a lower
threshold for what joins it), and nowhere else:

* **seeds**: the calcium the argmax gives, in 8-connected components (A-lines periodic) of at
  least ``seed_min_mm2`` (the post-processing's minimum calcium area: a speck that will be
  removed seeds nothing);
* a sample **joins** when its calcium probability is at least ``low``, the argmax calls it
  tissue (background), no calcium lies on its A-line, and the sample at the same depth on a
  neighbouring A-line is calcium (seed or joined); repeated until nothing joins.

Only A-lines without calcium take samples, so the arc grows and the thickness on A-lines that
already hold calcium does not; a region of low calcium probability that touches no lesion
stays tissue. The network's probabilities are changed only where samples join (one-hot
calcium), so the argmax and both resampling modes keep working on them.
"""

from __future__ import annotations

import torch

CHECK_EVERY = 8
"""Growth steps between the checks for convergence (each check waits for a GPU)."""


def is_extend_prob(value: object) -> bool:
    """Whether ``value`` is a valid extension probability: a number in [0, 1) (0: off)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and 0 <= value < 1


def extend_calcium(
    probs: torch.Tensor,
    arg: torch.Tensor,
    *,
    calcium: int,
    background: int,
    low: float,
    seeds: torch.Tensor,
) -> torch.Tensor:
    """The samples ``(B, A, R)`` that join the calcium ``seeds`` along the A-lines (module
    docstring). ``probs``: ``(B, C, A, R)`` class probabilities on the net grid; ``arg`` their
    argmax ``(B, A, R)``; ``calcium`` / ``background``: channel indices; ``seeds``: bool
    ``(B, A, R)``, a subset of the argmax calcium."""
    is_ca = arg == calcium
    free = (probs[:, calcium] >= low) & (arg == background) & ~is_ca.any(-1, keepdim=True)
    grown = seeds & is_ca
    before = grown
    for step in range(1, probs.shape[-2] + 1):
        grown = grown | ((torch.roll(grown, 1, 1) | torch.roll(grown, -1, 1)) & free)
        if step % CHECK_EVERY == 0:  # one host sync per CHECK_EVERY steps (GPU)
            if torch.equal(grown, before):
                break
            before = grown
    return grown & free


def apply_extension(probs: torch.Tensor, joined: torch.Tensor, calcium: int) -> torch.Tensor:
    """``probs`` with the ``joined`` samples set to one-hot ``calcium`` (a new tensor when any
    join; ``probs`` itself is not changed)."""
    if not bool(joined.any()):
        return probs
    one_hot = torch.zeros(probs.shape[1], dtype=probs.dtype, device=probs.device)
    one_hot[calcium] = 1
    return torch.where(joined[:, None], one_hot.view(1, -1, 1, 1), probs)
