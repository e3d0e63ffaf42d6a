"""Anatomical post-processing of predicted labels (issue 13 item 2), polar and Cartesian."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_scenes import PS, grid, polar_about, scene

from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.core.errors import InputError
from octseg.model.postprocess import PostprocessSettings, postprocess_labels

SPACES = ["cartesian", "polar"]
R = 1.0  # lumen radius (mm), catheter-centred
BIG = {"cartesian": (400, 400), "polar": (360, 300)}  # reach 2-3 mm at 0.01 mm


def run(frames, space, shape=None, **kw):
    labels = np.stack(frames).astype(np.uint8)
    h, w = labels.shape[1:]
    center = ((h - 1) / 2, (w - 1) / 2) if space == "cartesian" else None
    return postprocess_labels(labels.copy(), space, PS, center, **kw)


def annulus(lab, space, r0, r1, arc=(0.0, 360.0), value=BACKGROUND, shape=None):
    rho, phi = polar_about(*grid(space, shape), (0.0, 0.0))
    lab[(rho >= r0) & (rho < r1) & (((phi - arc[0]) % 360) < (arc[1] - arc[0]))] = value
    return lab


def disc(lab, space, rho, phi, radius, value, shape=None):
    y, x = grid(space, shape)
    cy, cx = rho * math.sin(math.radians(phi)), rho * math.cos(math.radians(phi))
    lab[np.hypot(y - cy, x - cx) < radius] = value
    return lab


def mismatch(a, b, cls):
    return int(((a == cls) != (b == cls)).sum())


@pytest.mark.parametrize("space", SPACES)
def test_lumen_is_one_region_with_holes_filled_and_nothing_beyond_the_wall(space):
    shape = BIG[space]
    clean = scene(space, lumen=(0, 0, R), shape=shape)
    lab = clean.copy()
    disc(lab, space, 0.6, 40, 0.05, BACKGROUND, shape)  # speck in the lumen
    disc(lab, space, 0.7, 160, 0.06, CALCIUM, shape)  # calcium labelled inside the lumen
    annulus(lab, space, 0.2, 0.23, shape=shape)  # unlabelled catheter ring
    annulus(lab, space, 1.5, 1.7, shape=shape, value=LUMEN)  # lumen ring outside the wall
    disc(lab, space, 1.9, 250, 0.1, LUMEN, shape)  # lumen island in the tissue
    (out,) = run([lab], space)
    assert mismatch(lab, clean, LUMEN) > 1000  # the scene does differ
    assert mismatch(out, clean, LUMEN) == 0
    assert not (out == CALCIUM).any()


@pytest.mark.parametrize("space", SPACES)
def test_disabled_changes_nothing(space):
    lab = disc(scene(space, lumen=(0, 0, R)), space, 0.6, 40, 0.05, BACKGROUND)
    for off in (False, {"enabled": False}):
        (out,) = run([lab], space, settings=off)
        assert np.array_equal(out, lab)


@pytest.mark.parametrize("space", SPACES)
def test_calcium_only_within_a_plausible_depth(space):
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    annulus(lab, space, R + 0.1, R + 0.6, arc=(0, 60), value=CALCIUM, shape=shape)  # real
    disc(lab, space, R + 1.5, 200, 0.1, CALCIUM, shape)  # 1.4-1.6 mm deep
    (out,) = run([lab], space)
    assert np.array_equal(out, lab)  # default limit 2.5 mm keeps both
    (out,) = run([lab], space, settings={"calcium_max_depth_mm": 1.0})
    deep = disc(np.zeros_like(lab), space, R + 1.5, 200, 0.1, 1, shape).astype(bool)
    assert (out[deep] == BACKGROUND).all()
    assert np.array_equal(out[~deep], lab[~deep])


def pixel_area_mm2(space, shape):
    """mm² of every pixel / polar sample (sample j of A A-lines: j·PS·PS·2π/A, j >= 1/8)."""
    if space == "cartesian":
        return np.full(shape, PS * PS)
    a, r = shape
    return np.broadcast_to(np.maximum(np.arange(r), 0.125) * (PS * PS * 2 * math.pi / a), shape)


def lesion_and_blob(space, blob_radius, blob_phi=200.0):
    """A 60° calcium lesion (0.5 mm thick) and a round calcium blob (1.5 mm from the catheter)
    beyond a 1 mm lumen; the blob's mask and its rasterised area (mm²)."""
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    annulus(lab, space, R + 0.1, R + 0.6, arc=(90, 150), value=CALCIUM, shape=shape)
    blob = disc(np.zeros_like(lab), space, R + 0.5, blob_phi, blob_radius, 1, shape).astype(bool)
    lab[blob] = CALCIUM
    return lab, blob, float(pixel_area_mm2(space, shape)[blob].sum())


@pytest.mark.parametrize("space", SPACES)
def test_calcium_components_under_the_minimum_area_become_background(space):
    lab, blob, area = lesion_and_blob(space, 0.05)  # ~0.008 mm²: a speck
    assert area == pytest.approx(math.pi * 0.05**2, rel=0.3)
    (out,) = run([lab], space, settings={"calcium_min_area_mm2": 0.05})
    assert (out[blob] == BACKGROUND).all()
    assert np.array_equal(out[~blob], lab[~blob])  # the lesion stays whole
    (off,) = run([lab], space)  # default 0: off
    assert np.array_equal(off, lab)
    (off,) = run([lab], space, settings={"calcium_min_area_mm2": 0})
    assert np.array_equal(off, lab)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("phi", [200.0, 0.0])  # 0°: across the polar seam (A-line 0 / A-1)
def test_calcium_component_at_the_minimum_area_is_kept(space, phi):
    """The area is the component's in mm² (polar: r·dθ·dr per sample), 8-connected, the polar
    A-lines periodic: a blob of 0.0314 mm² (0.1 mm radius) stays at a minimum 2% below its
    area and goes at one 2% above (rasterised area within 5% of πr²)."""
    lab, blob, area = lesion_and_blob(space, 0.1, phi)
    assert area == pytest.approx(math.pi * 0.1**2, rel=0.05)
    (keep,) = run([lab], space, settings={"calcium_min_area_mm2": 0.98 * area})
    assert np.array_equal(keep, lab)
    (out,) = run([lab], space, settings={"calcium_min_area_mm2": 1.02 * area})
    assert (out[blob] == BACKGROUND).all()
    assert np.array_equal(out[~blob], lab[~blob])


def test_calcium_ring_on_every_a_line_keeps_its_specks_apart():
    """A polar frame with calcium on every A-line (no seam to cut at): the ring stays, the
    speck beyond it goes."""
    lab, blob, _ = lesion_and_blob("polar", 0.05)
    annulus(lab, "polar", R + 0.1, R + 0.3, value=CALCIUM, shape=BIG["polar"])
    (out,) = run([lab], "polar", settings={"calcium_min_area_mm2": 0.05})
    assert (out[blob] == BACKGROUND).all()
    assert np.array_equal(out[~blob], lab[~blob])


@pytest.mark.parametrize("space", SPACES)
def test_small_calcium_same_on_cpu_and_on_the_batched_torch_path(space):
    """The labelling used off CPU (batched torch) and on CPU (scipy) remove the same pixels
    of random blobs (polar: across the seam too)."""
    import torch

    from octseg.model import postprocess as pp

    rng = np.random.default_rng(3)
    ca = rng.random((3, 90, 70)) < 0.08  # noise: components of every size
    ca[:, 40:60, 20:50] = True  # and a big one
    ca[:2, 30:33] = False  # A-lines without calcium in 2 frames, none such in the third
    ca[:, 88:, 40:51] = ca[:, :2, 40:51] = True  # polar: ~0.014 mm² across the seam
    center = (44.5, 34.5) if space == "cartesian" else None
    rays = pp._Rays((90, 70), space, PS, center, 360, "cpu")
    for min_mm2 in (0.0005, 0.003, 0.01):
        torch_path = pp._small_torch(torch.from_numpy(ca), rays, min_mm2)
        scipy_path = pp._small_scipy(ca, rays, min_mm2)
        assert 0 < int(scipy_path.sum()) < int(ca.sum())
        assert torch.equal(torch_path, scipy_path)


@pytest.mark.parametrize("space", SPACES)
def test_struts_only_in_a_band_around_the_lumen_border(space):
    shape = BIG[space]
    lab = scene(space, lumen=(0, 0, R), shape=shape)
    keep = [(R - 0.03, a) for a in (0, 60, 120)] + [(R - 0.4, 180), (R + 0.3, 240)]
    for rho, phi in keep:
        disc(lab, space, rho, phi, 0.025, STRUT, shape)
    disc(lab, space, 0.5 * R - 0.0, 300, 0.025, STRUT, shape)  # deep in the lumen: 0.5 mm in
    disc(lab, space, R + 0.9, 330, 0.025, STRUT, shape)  # 0.9 mm in the tissue
    s = {"strut_inner_mm": 0.45, "strut_outer_mm": 0.6}
    (out,) = run([lab], space, settings=s)
    n_in = int((lab == STRUT).sum())
    inner = disc(np.zeros_like(lab), space, 0.5 * R, 300, 0.025, 1, shape).astype(bool)
    outer = disc(np.zeros_like(lab), space, R + 0.9, 330, 0.025, 1, shape).astype(bool)
    assert (out[inner] == LUMEN).all() and (out[outer] == BACKGROUND).all()
    assert int((out == STRUT).sum()) == n_in - int(inner.sum()) - int(outer.sum())
    (out,) = run([lab], space)  # default band (1 mm either side) keeps all of them
    assert int((out == STRUT).sum()) == n_in


def pullback(space, n=7, missing=(3,), spurious=(5,)):
    """Frames with a guidewire sector at 30-45 deg beyond 0.6 mm (catheter-centred); the
    ``missing`` frames lack it, the ``spurious`` ones have another one at 200-215 deg."""
    frames = []
    for f in range(n):
        lab = scene(space, lumen=(0, 0, R))
        if f not in missing:
            annulus(lab, space, 0.6, 9.0, arc=(30, 45), value=GUIDEWIRE)
        if f in spurious:
            annulus(lab, space, 0.6, 9.0, arc=(200, 215), value=GUIDEWIRE)
        frames.append(lab)
    return frames


@pytest.mark.parametrize("space", SPACES)
def test_guidewire_sector_consistent_along_the_pullback(space):
    frames = pullback(space)
    out = run(frames, space)
    good = frames[0]
    rho, phi = polar_about(*grid(space), (0.0, 0.0))
    # the spurious sector of frame 5 is gone: lumen inside the contour, background beyond
    spur = (phi >= 201) & (phi < 214) & (rho >= 0.6)
    assert (out[5][spur & (rho < R - 0.02)] == LUMEN).all()
    assert (out[5][spur & (rho > R + 0.02)] == BACKGROUND).all()
    # frame 3 gets the sector's interior beyond the lumen contour; the spot in the lumen stays
    core = (phi >= 33) & (phi < 42)
    assert (out[3][core & (rho > R + 0.03)] == GUIDEWIRE).all()
    assert (out[3][core & (rho < R - 0.03)] == LUMEN).all()
    # frames that agree with their neighbours keep their guidewire exactly
    for f in (0, 1, 2, 4, 6):
        assert mismatch(out[f], good, GUIDEWIRE) == 0
    one = run(frames, space, settings={"guidewire_frames": 1})
    assert mismatch(one[3], frames[3], GUIDEWIRE) == 0  # window 1: off


def pullback_with_runs(space, present):
    """Frames of one scene (lumen + a calcium lesion) where ``present`` is true, the lesion
    removed elsewhere."""
    lab, _, _ = lesion_and_blob(space, 0.1)
    bare = lab.copy()
    bare[bare == CALCIUM] = BACKGROUND
    return [lab if p else bare for p in present]


@pytest.mark.parametrize("space", SPACES)
def test_calcium_of_lesions_under_the_minimum_length_becomes_background(space):
    """Lesions as the geometry finds them (gaps of up to 2 frames bridged), 0.2 mm frames: a
    lone frame (0.2 mm), a pair (0.4 mm) and a run of three that a lone frame two frames on
    still belongs to (6 frames spanned, 1.2 mm). 0.4 mm clears the lone frame only (2 x 0.2 mm
    reaches 0.4 mm), 0.6 mm the pair too; the bridged frame stays with its lesion unless gaps
    are not bridged (``max_gap_frames=0``); 0 is off."""
    present = [1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0]
    frames = pullback_with_runs(space, present)
    kw = {"frame_spacing_mm": 0.2}
    cases = (
        (0.4, 2, [0] * 4 + present[4:]),
        (0.6, 2, [0] * 9 + present[9:]),
        (0.4, 0, [0] * 4 + present[4:14] + [0, 0]),
    )
    plain = run(frames, space, **kw)
    for min_mm, gap, kept in cases:
        post = {"calcium_min_length_mm": min_mm}
        out = run(frames, space, settings=post, max_gap_frames=gap, **kw)
        assert (out == CALCIUM).any(axis=(1, 2)).tolist() == [bool(k) for k in kept]
        gone = np.array(present, bool) & ~np.array(kept, bool)
        assert (out[gone] == BACKGROUND).sum() > (np.stack(frames)[gone] == BACKGROUND).sum()
        keep = np.array(kept, bool)
        assert np.array_equal(out[keep], plain[keep])
    off = run(frames, space, settings={"calcium_min_length_mm": 0}, **kw)
    assert (off == CALCIUM).any(axis=(1, 2)).tolist() == [bool(p) for p in present]


@pytest.mark.parametrize("spacing", [None, 0.0, float("nan")])
def test_minimum_calcium_length_without_a_frame_spacing_is_a_clear_error(spacing):
    frames = pullback_with_runs("polar", [1, 1])
    settings = {"calcium_min_length_mm": 0.4}
    with pytest.raises(InputError, match="calcium_min_length_mm needs the frame spacing"):
        run(frames, "polar", settings=settings, frame_spacing_mm=spacing)


def test_settings_validation():
    with pytest.raises(InputError, match="guidewire_frames"):
        PostprocessSettings.from_value({"guidewire_frames": 4})
    with pytest.raises(InputError, match="unknown"):
        PostprocessSettings.from_value({"lumen_magic": 1})
    with pytest.raises(InputError, match="calcium_max_depth_mm"):
        PostprocessSettings.from_value({"calcium_max_depth_mm": -1})
    with pytest.raises(InputError, match="calcium_min_area_mm2 must be a number >= 0"):
        PostprocessSettings.from_value({"calcium_min_area_mm2": -0.01})
    with pytest.raises(InputError, match="calcium_min_length_mm must be a number >= 0"):
        PostprocessSettings.from_value({"calcium_min_length_mm": -0.2})
    with pytest.raises(InputError, match="lumen_contour must be smooth or first_wall"):
        PostprocessSettings.from_value({"lumen_contour": "outer"})
    assert PostprocessSettings.from_value(True).lumen_contour == "smooth"
    assert PostprocessSettings.from_value(True).enabled
    assert not PostprocessSettings.from_value(False).enabled


def test_frames_without_lumen_are_left_alone():
    lab = np.zeros((2, 64, 64), np.uint8)
    lab[:, 10:20, 10:20] = CALCIUM
    lab[:, 40:42, 40:42] = STRUT
    out = postprocess_labels(lab.copy(), "cartesian", PS, (31.5, 31.5))
    assert np.array_equal(out, lab)


def test_inference_writes_post_processed_labels(tmp_path):
    """``infer.py`` applies it where predictions become labels (on by default, switchable by
    ``postprocess.enabled``): labels.npz and frames.csv carry the cleaned lumen."""
    import csv

    from model_helpers import oracle_predictor, polar_npz, quiet_settings

    from octseg.infer.pipeline import run_inference
    from octseg.io.labels import load_labels

    frames = np.zeros((3, 64, 48), np.uint8)  # the oracle network reads class = grey / 64
    frames[:, :, :30] = 64  # lumen out to 1.2 mm
    frames[:, 20:23, 16:19] = 0  # a speck in the lumen
    frames[:, :, 38:42] = 64  # a lumen ring beyond the wall
    inp = polar_npz(tmp_path / "in" / "case.npz", frames=frames)
    grid = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}
    got = {}
    for on in (True, False):
        out = tmp_path / f"out_{on}"
        cfg = quiet_settings(inp, out, postprocess={"enabled": on})
        res = run_inference(cfg, oracle_predictor(grid, context_frames=1))
        assert res["manifest"]["n_done"] == 1
        lab = load_labels(out / "case" / "labels.npz").labels
        with open(out / "case" / "frames.csv") as fh:
            area = float(next(csv.DictReader(fh))["lumen_area_mm2"])
        got[on] = (lab, area)
    expect = np.zeros((64, 48), np.uint8)
    expect[:, :30] = LUMEN
    assert (got[True][0] == expect).all()
    assert (got[False][0][:, 20:23, 16:19] == BACKGROUND).all()  # raw prediction kept
    assert (got[False][0][:, :, 38:42] == LUMEN).all()
    assert got[True][1] == pytest.approx(got[False][1], rel=1e-6)  # geometry already robust


def test_inference_drops_calcium_seen_on_one_frame_at_the_files_frame_spacing(tmp_path):
    """``postprocess.calcium_min_length_mm`` in ``infer.py``: with the file's 0.2 mm frames, a
    0.4 mm minimum clears the one-frame deposit (frames.csv: no arc there) and keeps the
    three-frame lesion, three frames on, as it was."""
    import pandas as pd
    from model_helpers import oracle_predictor, polar_npz, quiet_settings

    from octseg.infer.pipeline import run_inference
    from octseg.io.labels import load_labels

    frames = np.zeros((8, 64, 48), np.uint8)  # the oracle network reads class = grey / 64
    frames[:, :, :30] = 64  # lumen out to 1.2 mm
    frames[[0, 4, 5, 6], 10:20, 31:36] = 128  # calcium: one frame, then a run of three
    inp = polar_npz(tmp_path / "in" / "case.npz", frames=frames)
    grid = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}
    got = {}
    for min_mm in (0.0, 0.4):
        out = tmp_path / f"out_{min_mm}"
        post = {"enabled": True, "calcium_min_length_mm": min_mm}
        run_inference(quiet_settings(inp, out, postprocess=post), oracle_predictor(grid))
        lab = load_labels(out / "case" / "labels.npz").labels
        arc = pd.read_csv(out / "case" / "frames.csv")["calcium_arc_deg"].fillna(0.0)
        got[min_mm] = (lab, arc.to_numpy())
    assert (got[0.0][1][[0, 4, 5, 6]] > 0).all()  # without the rule: all four frames
    assert got[0.4][1][0] == 0 and not (got[0.4][0][0] == CALCIUM).any()
    assert np.array_equal(got[0.4][0][1:], got[0.0][0][1:])
    assert got[0.4][1][4:7] == pytest.approx(got[0.0][1][4:7], rel=1e-6)


def test_missing_guidewire_follows_a_drifting_sector():
    """The guidewire drifts (here 1.5 degrees, ~2 A-lines, per frame); a frame that lacks it
    gets the union of its neighbours' rays: its whole sector (no dip of the contour into the
    shadow), at most the drift wider on each side. Frames that have it keep it exactly."""
    frames, truth = [], []
    for f in range(7):
        lab = scene("polar", lumen=(0, 0, R))
        annulus(lab, "polar", 0.6, 9.0, arc=(30 + 1.5 * f, 45 + 1.5 * f), value=GUIDEWIRE)
        truth.append(lab.copy())
        if f == 3:
            lab[lab == GUIDEWIRE] = BACKGROUND
        frames.append(lab)
    out = run(frames, "polar")
    rays = lambda lab: set(np.nonzero((lab == GUIDEWIRE).any(1))[0].tolist())  # noqa: E731
    got, want = rays(out[3]), rays(truth[3])
    assert want <= got and len(got - want) <= 6
    for f in (0, 1, 2, 4, 5, 6):
        assert rays(out[f]) == rays(truth[f])
