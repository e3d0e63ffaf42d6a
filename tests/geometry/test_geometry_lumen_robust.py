"""Lumen contour robust to specks (issue 13 item 1), polar and Cartesian.

The rule (docs/metrics.md, lumen contour): a non-lumen region *enclosed* by the lumen that is
connected to the catheter (no 8-connected non-lumen path to the tissue beyond the lumen) is
filled and does not end a ray: specks, overlay markers, blood, catheter/sheath rings. A
non-lumen region connected to the wall ends the rays that meet it: a dissection flap attached to
the wall, a speck touching the border. A flap is told from a speck by that connection alone,
not by its size or thickness.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from geometry_scenes import PS, grid, label_file, polar_about, scene

from benchmarks.reference import filled_exit
from octseg.core.classes import CALCIUM, LUMEN
from octseg.core.errors import InputError
from octseg.geometry import GeometrySettings, measure_labels
from octseg.geometry import lumen as lu

SPACES = ["cartesian", "polar"]
R_LUMEN = 1.0
CLEAN_AREA = math.pi * R_LUMEN**2
OLD = GeometrySettings(fill_lumen_holes=False)


def area(frames, space, settings=None):
    lf = label_file(frames, space)
    return [r["lumen_area_mm2"] for r in measure_labels(lf, settings=settings).frames]


def block(lab, space, rho, phi_deg, n_px, value=0):
    """Put a compact speck of exactly ``n_px`` pixels at (rho mm, phi deg) from the catheter."""
    y, x = grid(space)
    d = np.hypot(
        y - rho * math.sin(math.radians(phi_deg)), x - rho * math.cos(math.radians(phi_deg))
    )
    idx = np.argsort(d, axis=None, kind="stable")[:n_px]
    lab.reshape(-1)[idx] = value
    return lab


def ring(lab, space, r0, r1, arc=(0.0, 360.0), value=0):
    y, x = grid(space)
    rho, phi = polar_about(y, x, (0.0, 0.0))
    lab[(rho >= r0) & (rho < r1) & (((phi - arc[0]) % 360) < (arc[1] - arc[0]))] = value
    return lab


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("n_px", [1, 2, 5, 9, 14, 20])
def test_specks_inside_the_lumen_do_not_shrink_it(space, n_px):
    lab = scene(space, lumen=(0, 0, R_LUMEN))
    spots = [(0.55, 10, 0), (0.7, 100, CALCIUM), (0.85, 200, 0), (0.6, 290, 0), (0.93, 330, 0)]
    for rho, phi, value in spots:
        block(lab, space, rho, phi, n_px, value)
    clean, speck = area([scene(space, lumen=(0, 0, R_LUMEN)), lab], space)
    assert clean == pytest.approx(CLEAN_AREA, rel=0.02)
    assert speck == pytest.approx(clean, rel=1e-3)  # filled: the specks change nothing
    # the old rule ("the first non-lumen sample ends the ray") loses area at every speck
    (old,) = area([lab], space, OLD)
    assert old < clean * (1 - 0.004)


@pytest.mark.parametrize("space", SPACES)
def test_unlabelled_catheter_and_sheath_rings(space):
    lab = scene(space, lumen=(0, 0, R_LUMEN))
    lab[np.hypot(*grid(space)) < 0.12] = 0  # catheter core unlabelled
    ring(lab, space, 0.25, 0.28)  # catheter ring
    ring(lab, space, 0.40, 0.44)  # sheath ring, inside catheter_radius_mm (0.45)
    ring(lab, space, 0.55, 0.58, arc=(20, 320))  # a partial reflection ring further out
    (got,) = area([lab], space)
    assert got == pytest.approx(CLEAN_AREA, rel=0.02)
    (old,) = area([lab], space, OLD)
    assert old is None  # every ray used to end at the catheter: no lumen at all


@pytest.mark.parametrize("space", SPACES)
def test_closed_ring_beyond_the_catheter_radius_separates_the_lumen(space):
    """The stated limit: lumen beyond a closed non-lumen ring outside ``catheter_radius_mm``
    is not connected to the catheter; widening the catheter radius over the ring joins it."""
    lab = ring(scene(space, lumen=(0, 0, R_LUMEN)), space, 0.50, 0.53)
    (got,) = area([lab], space)
    assert got == pytest.approx(math.pi * 0.50**2, rel=0.05)
    (wide,) = area([lab], space, GeometrySettings(catheter_radius_mm=0.55))
    assert wide == pytest.approx(CLEAN_AREA, rel=0.02)


@pytest.mark.parametrize("space", SPACES)
def test_speck_touching_the_border_is_wall(space):
    """A speck connected to the wall is tissue: rays that meet it end there (a local dent no
    larger than the speck's shadow), exactly as under the old rule."""
    lab = scene(space, lumen=(0, 0, R_LUMEN))
    ring(lab, space, R_LUMEN - 0.08, R_LUMEN, arc=(40, 44))  # 8 px deep, touches the wall
    clean, got = area([scene(space, lumen=(0, 0, R_LUMEN)), lab], space)
    (old,) = area([lab], space, OLD)
    assert got == pytest.approx(old, rel=1e-6)
    dent = 4 / 360 * math.pi * (R_LUMEN**2 - (R_LUMEN - 0.08) ** 2)
    assert clean - 3 * dent < got < clean - 0.3 * dent


@pytest.mark.parametrize("space", SPACES)
def test_speck_touching_the_guidewire_is_filled(space):
    """The guidewire ends the rays that meet it (they are interpolated) but does not connect a
    speck to the wall: a speck beside the guidewire is filled like any other."""
    lab = scene(space, lumen=(0, 0, R_LUMEN), shadow=(100, 110, 0.6))
    ring(lab, space, 0.66, 0.72, arc=(110, 116))  # touches the guidewire's side
    clean, got = area([scene(space, lumen=(0, 0, R_LUMEN), shadow=(100, 110, 0.6)), lab], space)
    (old,) = area([lab], space, OLD)
    assert got == pytest.approx(clean, rel=1e-3)
    assert old < clean * (1 - 0.005)


def flap_scene(space, attached: bool):
    """A 3-pixel-thick flap at 0.70 mm over 10-80 deg; ``attached``: joined to the wall by a
    radial bar at 10-14 deg (a dissection flap). The false lumen behind it stays lumen and is
    connected to the true lumen around the flap's free end."""
    lab = scene(space, lumen=(0, 0, R_LUMEN))
    ring(lab, space, 0.70, 0.73, arc=(10, 80))
    if attached:
        ring(lab, space, 0.70, R_LUMEN + 0.02, arc=(10, 14))
    return lab


@pytest.mark.parametrize("space", SPACES)
def test_attached_flap_is_not_filled_but_a_floating_one_is(space):
    attached, floating = area([flap_scene(space, True), flap_scene(space, False)], space)
    behind = 70 / 360 * math.pi * (R_LUMEN**2 - 0.70**2)  # the false lumen behind the flap
    assert attached == pytest.approx(CLEAN_AREA - behind, rel=0.03)
    assert floating == pytest.approx(CLEAN_AREA, rel=0.02)


def random_frame(rng, a=96, s=80):
    """A polar label frame with a wavy wall, random specks, arcs and wall-attached bumps."""
    lab = np.zeros((a, s), np.uint8)
    wall = 50 + 12 * np.sin(np.linspace(0, 2 * np.pi, a, endpoint=False) * rng.integers(1, 4))
    lab[np.arange(s)[None, :] < wall[:, None]] = LUMEN
    for _ in range(rng.integers(3, 12)):
        r0, c0 = rng.integers(0, a), rng.integers(2, 60)
        h, w = rng.integers(1, 6), rng.integers(1, 6)
        rows = np.arange(r0, r0 + h) % a
        lab[np.ix_(rows, np.arange(c0, min(s, c0 + w)))] = rng.choice([0, 2, 4])
    if rng.random() < 0.5:  # a lumen island beyond the wall
        lab[rng.integers(0, a - 10) :][:8, 70:74] = LUMEN
    return lab


def test_filled_exit_agrees_across_implementations_on_random_frames():
    """Three implementations of one definition on random frames, sample for sample (integer
    results, so they must match exactly): ``lumen_exit`` (on CPU: ``ndimage.label`` plus the
    seam graph), the batched torch ``reconstruct`` used on GPUs, and the reference's
    ``ndimage.binary_propagation`` on stacked copies."""
    rng = np.random.default_rng(13)
    frames = np.stack([random_frame(rng) for _ in range(12)])
    t = torch.from_numpy(frames)
    k = lu.lumen_exit(t, cath_samples=5, fill=True).numpy()
    ref = np.stack([filled_exit(f, 5) for f in frames])
    assert np.array_equal(k, ref)
    lum, gw = lu._lumen_like(t).bool(), t == 4
    on_gpu = lu._beyond_torch(lu._kept_torch(lum, 5), gw)  # the GPU path, run on the CPU
    assert torch.equal(on_gpu, lu.beyond_lumen(lu.connected_lumen(lum, 5), gw))
    plain = lu.lumen_exit(t, fill=False).numpy()
    assert (plain != ref).any()  # the frames do exercise the filling


def test_reconstruct_wraps_the_aline_axis():
    mask = torch.zeros(1, 8, 5, dtype=torch.bool)
    mask[0, [7, 0, 1], 2] = True
    seed = torch.zeros_like(mask)
    seed[0, 7, 2] = True
    assert lu.reconstruct(seed, mask)[0, :, 2].nonzero().squeeze(1).tolist() == [0, 1, 7]


def test_frames_without_lumen_still_have_no_contour():
    lab = np.zeros((2, 256, 256), np.uint8)
    lab[1, 100:110, 100:110] = CALCIUM
    rows = measure_labels(label_file(list(lab), "cartesian")).frames
    assert all(r["lumen_area_mm2"] is None for r in rows)


def test_settings_are_validated():
    with pytest.raises(InputError, match="fill_lumen_holes"):
        GeometrySettings.from_dict({"fill_lumen_holes": "yes"})
    with pytest.raises(InputError, match="catheter_radius_mm"):
        GeometrySettings.from_dict({"catheter_radius_mm": -1})
    assert lu.samples_within(0.45, PS) == 45 and lu.samples_within(0.0, PS) == 0
