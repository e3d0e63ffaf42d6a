"""The post-processing's lumen contour rule (``postprocess.lumen_contour``, issue 13): the
smoothest path through the ends of the catheter-connected lumen (default) against the first
wall. Analytic scenes at 0.01 mm, polar and Cartesian; areas measured by octseg.geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from geometry_scenes import PS, grid, polar_about, scene
from test_postprocess import BIG, SPACES, annulus, run

from octseg.core.classes import BACKGROUND, GUIDEWIRE, LUMEN
from octseg.geometry import lumen as lu
from octseg.geometry import lumen_path as lp
from octseg.geometry.lumen_contour import lumen_contours

R = 1.0  # lumen radius (mm)
TRUE_AREA = math.pi * R * R
TOL = 0.02  # relative area tolerance: rasterisation and the contour's half-sample convention


def area(lab, space):
    h, w = lab.shape
    center = ((h - 1) / 2, (w - 1) / 2) if space == "cartesian" else None
    return float(lumen_contours(lab[None], space, PS, center).area_mm2[0])


def chain_scene(space):
    """A chain of non-lumen 0.1 mm thick (blood blobs labelled as tissue) touching the wall at
    30° and curving inwards to 0.55 mm at 100°; the lumen behind it is connected to the rest
    around its free end."""
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    rho, phi = polar_about(*grid(space, shape), (0.0, 0.0))
    t = ((phi - 30) % 360) / 70  # 0 at 30°, 1 at 100°
    r_chain = 1.0 - 0.45 * t
    lab[(t <= 1) & (rho >= r_chain - 0.1) & (rho < r_chain) & (rho < R)] = BACKGROUND
    return lab


def bar_scene(space):
    """A bar of non-lumen at 0.55-0.75 mm over 30-100° joined to the wall by a radial piece at
    30-40° (a flap's shape: as deep where it touches the wall as anywhere)."""
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    annulus(lab, space, 0.55, 0.75, arc=(30, 100), shape=shape)
    annulus(lab, space, 0.55, 1.05, arc=(30, 40), shape=shape)
    return lab


@pytest.mark.parametrize("space", SPACES)
def test_chain_curving_away_from_the_wall_is_crossed(space):
    lab = chain_scene(space)
    lost = 70 / 360 * math.pi * (R**2 - 0.55**2) / 2  # about half the wedge behind the chain
    assert area(lab, space) < TRUE_AREA - 0.5 * lost  # the geometry's first wall
    (first,) = run([lab], space, settings={"lumen_contour": "first_wall"})
    (smooth,) = run([lab], space)  # default: smooth
    assert area(first, space) < TRUE_AREA - 0.5 * lost
    # the first-wall rule turns the lumen behind the chain into background
    assert int((first == LUMEN).sum()) < int((lab == LUMEN).sum())
    assert area(smooth, space) == pytest.approx(TRUE_AREA, rel=TOL)
    clean = scene(space, lumen=(0, 0, R), shape=BIG[space])
    assert ((smooth == LUMEN) != (clean == LUMEN)).mean() < 0.002  # the chain filled


@pytest.mark.parametrize("space", SPACES)
def test_flap_shaped_bar_keeps_the_first_wall(space):
    lab = bar_scene(space)
    (first,) = run([lab], space, settings={"lumen_contour": "first_wall"})
    (smooth,) = run([lab], space)
    assert area(smooth, space) == pytest.approx(area(first, space), rel=0.005)
    assert area(smooth, space) < 0.9 * TRUE_AREA


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("arc", [60, 300])
def test_lumen_leaking_through_a_wall_gap_is_cut(space, arc):
    """Lumen running out through a gap in the wall (20-40°) into lumen at 1.3-1.6 mm over 0-60°
    (a pocket) or 0-300° (the issue's dim-wall failure: tissue beyond the wall labelled lumen):
    the rays through the gap keep it (the lumen runs on there), the rest is cut (the path along
    it costs the same jumps as the wall's, and the tie keeps the wall) - as under the
    first-wall rule. (A ring all round would make the wall an enclosed hole, which the
    filled-exit rule fills too.)"""
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    annulus(lab, space, 1.3, 1.6, arc=(0, arc), value=LUMEN, shape=shape)
    annulus(lab, space, 1.0, 1.3, arc=(20, 40), value=LUMEN, shape=shape)  # the gap
    (smooth,) = run([lab], space)
    (first,) = run([lab], space, settings={"lumen_contour": "first_wall"})
    neck = math.pi * (1.6**2 - 1) / 18
    assert area(smooth, space) == pytest.approx(TRUE_AREA + neck, rel=TOL)
    assert area(smooth, space) == pytest.approx(area(first, space), rel=0.005)
    assert int((smooth[_beyond(space, 1.32)] == LUMEN).sum()) < 0.45 * int(
        (lab[_beyond(space, 1.32)] == LUMEN).sum()
    )  # all but the gap's share gone (less the tolerance bands)


def _beyond(space, r_mm):
    y, x = grid(space, BIG[space])
    return np.hypot(y, x) > r_mm


def test_no_candidate_inside_the_filled_exit():
    """Enclosed holes are filled: a ring of them (a sheath reflection) would otherwise offer a
    path without jumps. Ray samples: lumen 0-29 with holes at 10-11 and 20-21, wall 30-39,
    lumen again 40-44 (behind an attached structure), wall to the end; the catheter-connected
    lumen labelled from the catheter on (``KeptLumen`` from sample 0)."""
    lum = torch.zeros(1, 4, 60, dtype=torch.uint8)
    lum[..., :30] = 1
    lum[:, 1:, 10:12] = 0
    lum[:, 1:, 20:22] = 0
    lum[..., 40:45] = 1
    lum[0, 0, 30:40] = 1  # one ray where the lumen behind is joined to the rest
    first = torch.full((1, 4), 30.0)
    kept = lu.KeptLumen(torch.tensor([0]), 0, lu.connected_lumen(lum.bool(), 0))
    cand, valid = lp.candidates(kept, first)
    got = cand[0, 1][valid[0, 1]].tolist()
    assert got == [30.0, 45.0]  # the exit and the lumen behind; not 10 or 20
    assert (cand[valid] >= 30).all()


def test_candidates_on_a_thin_slice():
    """Lumen just beyond the exit on one ray (the labelled slice shorter than the candidate
    count) still gives a full candidate table."""
    lum = torch.zeros(2, 6, 40, dtype=torch.uint8)
    lum[..., :20] = 1
    lum[0, 2, 21] = 1
    lo = 19  # as lumen_exit labels it: from a sample before the nearest exit to the farthest lumen
    kept = lu.KeptLumen(torch.tensor([0]), lo, lu.connected_lumen(lum[:1, :, lo:23].bool(), 0))
    cand, valid = lp.candidates(kept, torch.full((2, 6), 20.0))
    assert cand.shape == (2, 6, lp.MAX_CANDIDATES)
    assert valid[..., 0].all() and valid[..., 1:].sum() == 0  # 21 is not connected


def test_smoothest_path_follows_the_wall_and_skips_the_guidewire():
    n = 90
    wall = 100 + 10 * torch.sin(torch.arange(n) * (2 * math.pi / n))  # an eccentric wall
    inner = wall - 40
    cand = torch.stack([inner, wall], -1)[None].clone()
    valid = torch.ones(1, n, 2, dtype=torch.bool)
    valid[0, :30, 0] = False  # rays 0-29: only the wall; 30-89: a structure in front of it
    skip = torch.zeros(1, n, dtype=torch.bool)
    path = lp.smoothest_path(cand, valid, skip)
    assert torch.allclose(path[0], wall)
    # the guidewire rays carry no wall: any candidate there costs nothing
    cand2 = cand.clone()
    cand2[0, 40:50, 1] = 500.0
    skip[0, 40:50] = True
    path2 = lp.smoothest_path(cand2, valid, skip)
    keep = ~skip[0]
    assert torch.allclose(path2[0][keep], wall[keep])


def _pocket_table(pocket: float, wall_far: float):
    """Candidates of 36 rays: the wall at 100 samples; a gap at rays 10-11 through which the
    lumen runs on to 161 (its filled exit); beyond the wall at rays 6-9 and 12-15, lumen
    connected through the gap ending at ``pocket`` (a pocket of even depth); the wall on the
    rays just past the pocket at ``wall_far``."""
    n = 36
    cand = torch.full((1, n, 2), 100.0)
    valid = torch.zeros(1, n, 2, dtype=torch.bool)
    valid[..., 0] = True
    cand[0, 10:12, 0] = 161.0
    for rays in (slice(6, 10), slice(12, 16)):
        cand[0, rays, 1] = pocket
        valid[0, rays, 1] = True
    cand[0, [5, 16], 0] = wall_far
    return cand, valid, torch.zeros(1, n, dtype=torch.bool)


@pytest.mark.parametrize(("pocket", "wall_far"), [(161.0, 100.0), (160.0, 100.0), (160.0, 101.0)])
def test_pocket_one_sample_off_the_gap_is_cut(pocket, wall_far):
    """Rasterisation steps at the pocket's ends (its edge 1 sample inside the gap's, the wall
    beyond it 1 sample deeper) save 1-2 samples of jump: no reason to keep the pocket (the
    polar case of the scene above on some machines)."""
    cand, valid, skip = _pocket_table(pocket, wall_far)
    path = lp.smoothest_path(cand, valid, skip)
    assert torch.equal(path, cand[..., 0])


@pytest.mark.parametrize(("dip", "crossed"), [(4.0, False), (5.0, True)])
def test_a_dip_is_crossed_only_when_it_saves_more_than_enter(dip, crossed):
    """A structure on the wall at ray 10 whose inner edge lies ``dip`` samples inside the wall
    (at 100 on all 36 rays), the wall behind it a candidate: the first-wall path pays
    2 x (dip - DEAD) samples of jump, the excursion ENTER (4): crossed above that only."""
    n = 36
    cand = torch.full((1, n, 2), 100.0)
    valid = torch.zeros(1, n, 2, dtype=torch.bool)
    valid[..., 0] = True
    cand[0, 10, 0] = 100.0 - dip
    valid[0, 10, 1] = True
    path = lp.smoothest_path(cand, valid, torch.zeros(1, n, dtype=torch.bool))
    assert path[0, 10].item() == (100.0 if crossed else 100.0 - dip)
    assert torch.equal(torch.cat([path[0, :10], path[0, 11:]]), torch.full((n - 1,), 100.0))


def test_run_ends_lists_the_first_and_the_last_ends():
    kept = torch.zeros(1, 1, 40, dtype=torch.bool)
    for a, b in ((0, 5), (8, 10), (12, 13), (20, 30), (33, 35)):
        kept[0, 0, a:b] = True
    cand, valid = lp.run_ends(kept, k=3)
    assert cand[0, 0][valid[0, 0]].tolist() == [5.0, 10.0, 35.0]
    cand, valid = lp.run_ends(kept, k=8, above=torch.tensor([[11.0]]))
    assert cand[0, 0][valid[0, 0]].tolist() == [13.0, 30.0, 35.0]


def test_connected_lumen_same_on_scipy_and_torch():
    rng = np.random.default_rng(3)
    lum = torch.from_numpy(rng.random((3, 64, 50)) < 0.6)
    assert torch.equal(lu.connected_lumen(lum, 4), lu._kept_torch(lum, 4))


@pytest.mark.parametrize("space", SPACES)
def test_guidewire_rays_keep_their_first_exit(space):
    """On guidewire rays the smooth rule does not fill: a strip of tissue labels between the
    lumen and the guidewire stays as labelled, as under the first-wall rule, although the
    neighbouring rays' contour lies beyond it."""
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    annulus(lab, space, 0.8, 2.0, arc=(200, 215), value=GUIDEWIRE, shape=shape)
    annulus(lab, space, 0.7, 0.8, arc=(200, 215), value=BACKGROUND, shape=shape)
    (smooth,) = run([lab], space)
    (first,) = run([lab], space, settings={"lumen_contour": "first_wall"})
    assert np.array_equal(smooth, first)
    strip = _beyond(space, 0.72) & ~_beyond(space, 0.78) & (lab == BACKGROUND)
    assert strip.sum() > 20 and not (smooth[strip] == LUMEN).any()
