"""The smoothest lumen contour through the ends of the catheter-connected lumen, batched in torch.

Used by the post-processing of predictions (``postprocess.lumen_contour: smooth``, the default;
docs/metrics.md). On every ray of label samples ``(B, N, S)`` the *candidates* are the
filled-lumen exit (:func:`octseg.geometry.lumen.lumen_exit`, the first-wall rule) and, beyond
it, the outer ends of the runs of the lumen connected to the catheter
(:func:`octseg.geometry.lumen.connected_lumen`): the lumen behind something attached to the
wall. The contour takes one candidate per ray so that the total radial jump between
neighbouring rays is smallest (dynamic programming around the frame); among paths of equal
total jump, the inner one. Each excursion beyond the filled exit must save more than
``ENTER`` samples of jump: the rasterisation steps at its two ends (a pocket's edge 1 sample
deeper than the gap's on a few rays) are no saving. So:

* a chain of non-lumen attached to the wall that reaches deeper into the lumen than where it
  touches the wall (residual blood that the network labelled as tissue, a chain of blobs
  curving away from the wall) is crossed, and the lumen behind it kept: the first-wall
  contour dips to the chain's deepest point and back, the wall behind it only to where the
  chain touches the wall;
* a structure whose inner edge is as deep where it touches the wall as anywhere (a radial
  bar, a flap joined by one) costs the same jumps either way, and the tie keeps the first-wall
  contour: the false lumen behind an attached flap stays out, as in the geometry of expert
  labels (docs/metrics.md);
* lumen leaking out through a gap in the wall into a pocket or a partial ring of even depth
  beyond it (a dim wall, a shadow) is a tie or worse for the outer path, so it is cut as under
  the first-wall rule (on the rays through the gap itself the lumen runs on, and the contour
  with it). A pocket that tapers towards the wall on both sides of the gap is, to the labels,
  the same shape as the lumen behind a chain, and is kept.

Rays in ``skip`` (through the guidewire: no wall there) do not count in the jumps; the caller
interpolates them.
"""

from __future__ import annotations

import torch

from octseg.geometry.kernels import for_device
from octseg.geometry.lumen import KeptLumen

MAX_CANDIDATES = 8  # per ray: the filled exit, the first six run ends beyond it and the last
TIE = 1e-3  # cost per sample of radius: ties, and jumps saved by less than this, go inward
DEAD = 2.0  # samples of a jump that cost nothing: rasterisation steps of a contour
ENTER = 2 * DEAD  # samples an excursion beyond the filled exit must save: its two ends' steps
PIECE = 64  # frames per dynamic-programming pass on CPU (memory: about N x 64 x K^2 x 5 bytes)
INF = torch.finfo(torch.float32).max / 4


def run_ends(
    kept: torch.Tensor, k: int = MAX_CANDIDATES, above: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per ray of ``kept`` (bool (B, N, S)): the sample just past the end of each run (only
    those past ``above`` (B, N) when given), at most ``k`` (the first ``k - 1`` and the last),
    as float radii ``(B, N, k)`` and their validity."""
    s = kept.shape[-1]
    nxt = torch.cat([kept[..., 1:], torch.zeros_like(kept[..., :1])], -1)
    pos = torch.arange(1, s + 1, device=kept.device, dtype=torch.float32)
    ends = kept & ~nxt
    if above is not None:
        ends &= pos > above[..., None]
    big = float(s + 1)
    first = torch.where(ends, pos, big).topk(min(k - 1, s), -1, largest=False).values
    if first.shape[-1] < k - 1:  # fewer samples than candidates: pad with none
        first = torch.nn.functional.pad(first, (0, k - 1 - first.shape[-1]), value=big)
    last = torch.where(ends, pos, -1.0).amax(-1, keepdim=True)
    cand = torch.cat([first, last], -1)
    valid = (cand > 0) & (cand < big)
    # the last end is also among the first ones when a ray has fewer than k ends
    dup = torch.zeros_like(valid)
    dup[..., :-1] = first == last
    return cand, valid & ~dup


def _jump(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cost of a radius change: its size less ``DEAD`` samples (rasterisation), at least 0."""
    return ((a - b).abs() - DEAD).clamp(min=0)


def _entry(k: int, device) -> torch.Tensor:
    """``(from, to)`` cost of entering an excursion: ``ENTER`` from candidate 0 to any other."""
    e = torch.zeros(k, k, device=device)
    e[0, 1:] = ENTER
    return e


def _rolled(x: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``x`` (B, N, ...) with each frame's rays rotated to begin at ray ``start`` (B,)."""
    n = x.shape[1]
    idx = (torch.arange(n, device=x.device) + start[:, None]) % n
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.ndim - 2))).expand_as(x))


def smoothest_path(cand: torch.Tensor, valid: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """One radius per ray ``(B, N)`` from ``cand`` ``(B, N, K)`` minimising, around the closed
    contour, the sum of the radius changes between neighbouring rays (:func:`_jump`; rays in
    ``skip`` carry the previous ray's choice and cost nothing) plus ``TIE`` per sample of
    radius and ``ENTER`` per step from the filled exit (candidate 0) to a candidate beyond it.
    Frames with one candidate per ray take it; the others go to :func:`_exact_path` in pieces
    of ``PIECE`` frames (16 times as many off the CPU)."""
    out = cand[..., 0].clone()
    busy = ((valid.sum(-1) > 1) & ~skip).any(1).nonzero().squeeze(1)
    # the loop over rays launches a few kernels per ray: on an accelerator take far more frames
    piece = for_device(PIECE, cand.device)
    for i in range(0, busy.numel(), piece):
        f = busy[i : i + piece]
        out[f] = _exact_path(cand[f], valid[f], skip[f])
    return out


def _exact_path(cand: torch.Tensor, valid: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """:func:`smoothest_path`, exactly: each frame is rotated to start at a ray that is not
    skipped, one pass of dynamic programming per candidate of that ray (all passes batched),
    each pass closed by the jump back to its start."""
    b, n, k = cand.shape
    dev = cand.device
    start = (~skip).to(torch.uint8).argmax(1)
    c, v, sk = (_rolled(t, start) for t in (cand, valid, skip))
    # a skipped ray keeps the previous ray's candidates, free of charge
    pos = torch.where(sk, -1, torch.arange(n, device=dev)).cummax(1).values.clamp(min=0)
    c = c.gather(1, pos[..., None].expand(-1, -1, k))
    v = v.gather(1, pos[..., None].expand(-1, -1, k))
    step = _jump(c[:, 1:, None, :], c[:, :-1, :, None]) + _entry(k, dev)  # (b, n-1, from, to)
    stay = torch.where(torch.eye(k, dtype=torch.bool, device=dev), 0.0, INF)
    step = torch.where(sk[:, 1:, None, None], stay, step)
    unary = torch.where(v, TIE * c, INF)
    unary = torch.where(sk[..., None], 0.0, unary)
    # pass s (dim 1) starts on candidate s of ray 0
    eye = torch.eye(k, dtype=torch.bool, device=dev)
    cost = torch.where(eye, unary[:, 0, None, :], INF)  # (b, pass, candidate)
    backs = []
    for i in range(1, n):
        best, arg = (cost[..., None] + step[:, None, i - 1]).min(2)
        cost = best + unary[:, None, i]
        backs.append(arg.to(torch.uint8))  # K <= 255 candidates
    close = _jump(c[:, -1, None, :], c[:, 0, :, None]) + _entry(k, dev).T  # (b, pass, last)
    total = cost + close  # closed by the step back to the start
    pick = total.view(b, k * k).argmin(1)
    frames = torch.arange(b, device=dev)
    p, j = pick // k, pick % k
    choice = torch.empty(b, n, dtype=torch.long, device=dev)
    choice[:, n - 1] = j
    for i in range(n - 2, -1, -1):
        j = backs[i][frames, p, j].long()
        choice[:, i] = j
    path = c.gather(2, choice[..., None])[..., 0]
    return _rolled(path, (n - start) % n)


def candidates(kept: KeptLumen, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Contour candidates ``(B, N, K)`` and their validity: the filled-lumen exit ``first``
    ``(B, N)`` and the :func:`run_ends` beyond it of the catheter-connected lumen that
    :func:`octseg.geometry.lumen.lumen_exit` labelled (``kept``; the other frames have no
    lumen beyond their first run, so the exit is their only candidate). Nothing inside the
    filled exit is a candidate: enclosed holes are filled already, and a ring of them (a
    sheath reflection, a circle of specks) would otherwise be a path with no jumps at all."""
    b, n = first.shape
    first = first.to(torch.float32)
    cand = torch.zeros(b, n, MAX_CANDIDATES, device=first.device)
    cand[..., 0] = first
    valid = torch.zeros_like(cand, dtype=torch.bool)
    valid[..., 0] = True
    if kept.frames.numel():
        f = kept.frames
        ends, ok = run_ends(kept.kept, MAX_CANDIDATES - 1, above=first[f] - kept.lo)
        cand[f, :, 1:] = ends + kept.lo
        valid[f, :, 1:] = ok
    return cand, valid
