"""Small calcium components kept where a lesion continues them (``calcium_track_frames``,
octseg.model.track), polar and Cartesian, through :func:`postprocess_labels`."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_scenes import scene
from test_postprocess import BIG, SPACES, R, annulus, disc, run

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.core.errors import InputError
from octseg.model.postprocess import PostprocessSettings
from octseg.model.track import MARGIN_DEG, restore_tracked, split_small
from octseg.report.pullback import _postprocess_note

SPECK_MM = 0.05  # a speck of ~0.008 mm² (under the 0.05 mm² minimum below)
RHO = R + 0.5  # the specks' distance from the catheter (mm): 1.9° either side of their centre


def bare(space):
    return scene(space, lumen=(0, 0, R), shape=BIG[space])


def lesion(space):
    """A 60° calcium lesion (90-150°, 0.5 mm thick) beyond a 1 mm lumen."""
    return annulus(
        bare(space), space, R + 0.1, R + 0.6, arc=(90, 150), value=CALCIUM, shape=BIG[space]
    )


def speck(lab, space, phi):
    """``lab`` with a calcium speck centred at ``phi``°, ``RHO`` mm out; and the speck's mask."""
    m = disc(np.zeros_like(lab), space, RHO, phi, SPECK_MM, 1, BIG[space]).astype(bool)
    lab = lab.copy()
    lab[m] = CALCIUM
    return lab, m


def tracked(frames, space, k):
    post = {"calcium_min_area_mm2": 0.05, "calcium_track_frames": k}
    return run(frames, space, settings=post)


def calcium_frames(out):
    return (out == CALCIUM).any(axis=(1, 2)).tolist()


@pytest.mark.parametrize("space", SPACES)
def test_specks_on_a_lesions_rays_are_kept_within_k_frames_chained(space):
    """The lesion on frames 4-6; specks on its rays (120°) on frames 0, 1 and 9 and one far from
    them (250°) on frame 8. k=3: frame 1 (3 frames from the lesion) and frame 9 stay, and frame
    0 through frame 1 (chained); the 250° speck goes. k=2: no speck stays (frames 1 and 9 are 3
    frames away, frame 0 4). k=0: the plain minimum area."""
    specks = {0: 120.0, 1: 120.0, 8: 250.0, 9: 120.0}
    frames, masks = [], {}
    for f in range(10):
        lab = lesion(space) if 4 <= f <= 6 else bare(space)
        if f in specks:
            lab, masks[f] = speck(lab, space, specks[f])
        frames.append(lab)
    expect = {
        3: [True, True, False, False, True, True, True, False, False, True],
        2: [False] * 4 + [True] * 3 + [False] * 3,
        0: [False] * 4 + [True] * 3 + [False] * 3,
    }
    plain = run(frames, space, settings={"calcium_min_area_mm2": 0.05})
    for k, want in expect.items():
        out = tracked(frames, space, k)
        assert calcium_frames(out) == want, k
        for f, m in masks.items():  # a kept speck is kept whole, a dropped one wholly
            assert (out[f][m] == (CALCIUM if want[f] else BACKGROUND)).all(), (k, f)
            assert np.array_equal(out[f][~m], plain[f][~m])  # nothing else changes
        assert np.array_equal(out[4:7], plain[4:7])  # the lesion itself is untouched
    assert np.array_equal(tracked(frames, space, 0), plain)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(("phi", "kept"), [(153.0, True), (158.0, False)])
def test_a_speck_beside_the_lesions_rays_is_kept_within_the_margin(space, phi, kept):
    """The lesion ends at 150°; a speck spanning 151-155° (1° past it) is within the 3° margin,
    one spanning 156-160° (6° past) is not."""
    assert MARGIN_DEG == 3.0
    near, m = speck(bare(space), space, phi)
    (out, *_) = tracked([near, lesion(space), lesion(space)], space, 1)
    assert (out[m] == CALCIUM).all() == kept
    assert (out[m] == BACKGROUND).all() == (not kept)


@pytest.mark.parametrize("space", SPACES)
def test_a_speck_is_not_kept_by_its_own_frames_lesion(space):
    """Tracking looks at other frames only: on a lone frame with the lesion, a speck behind the
    lesion's rays (1 mm beyond it) is removed as without tracking."""
    lab = lesion(space)
    m = disc(np.zeros_like(lab), space, R + 1.2, 120.0, SPECK_MM, 1, BIG[space]).astype(bool)
    lab[m] = CALCIUM
    (out,) = tracked([lab], space, 3)
    assert (out[m] == BACKGROUND).all()
    assert (out[~m] == lab[~m]).all()


@pytest.mark.parametrize("space", SPACES)
def test_specks_never_rescue_a_lesion_the_minimum_length_removes(space):
    """0.2 mm frames, minimum length 0.4 mm: the lesion on frame 3 alone is removed with the
    specks on its rays on frames 1, 2 and 4 (they would lengthen it to 0.8 mm); the lesion on
    frames 8-9 stays and keeps its speck on frame 11."""
    frames = [bare(space) for _ in range(13)]
    for f in (3, 8, 9):
        frames[f] = lesion(space)
    for f in (1, 2, 4, 11):
        frames[f], _ = speck(frames[f], space, 120.0)
    post = {"calcium_min_area_mm2": 0.05, "calcium_track_frames": 3, "calcium_min_length_mm": 0.4}
    out = run(frames, space, settings=post, frame_spacing_mm=0.2)
    assert calcium_frames(out) == [f in (8, 9, 11) for f in range(13)]


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(("at", "kept"), [(9, False), (6, True)])
def test_tracked_specks_never_make_a_lesion_of_their_own(space, at, kept):
    """k=5 reaches past the lesion (frames 2-4): a speck on frame 9, four calcium-free frames on
    (more than ``max_gap_frames`` = 2), would be a lesion of its own and stays out; one on
    frame 6 (one frame on) joins the lesion."""
    frames = [lesion(space) if 2 <= f <= 4 else bare(space) for f in range(11)]
    frames[at], _ = speck(frames[at], space, 120.0)
    post = {"calcium_min_area_mm2": 0.05, "calcium_track_frames": 5}
    out = run(frames, space, settings=post, max_gap_frames=2)
    assert calcium_frames(out) == [f in (2, 3, 4) or (kept and f == at) for f in range(11)]


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(("phi", "kept"), [(0.0, True), (359.0, True), (65.0, False)])
def test_tracking_across_the_rays_seam(space, phi, kept):
    """A lesion across 0° (300-58°, rays 719/0 or A-lines A-1/0): specks at 0° and 359° are on
    its rays; one at 65° (63-67°, 5° past its end) is not."""
    shape = BIG[space]
    wide = annulus(bare(space), space, R + 0.1, R + 0.6, arc=(300, 418), value=CALCIUM, shape=shape)
    near, m = speck(bare(space), space, phi)
    out = tracked([near, wide, wide], space, 1)
    assert (out[0][m] == CALCIUM).all() == kept
    assert (out[0][m] == BACKGROUND).all() == (not kept)


@pytest.mark.parametrize("space", SPACES)
def test_mid_pullback_a_speck_is_kept_by_other_frames_only(space):
    """The lesion on frame 2 alone: a speck on its rays on frame 2 (its own frame, 120°) goes,
    one on frame 3 (100°, clear of the first's rays, so it cannot keep it in turn) stays."""
    frames = [bare(space) for _ in range(5)]
    frames[2] = lesion(space)
    behind = disc(np.zeros_like(frames[2]), space, R + 1.2, 120.0, SPECK_MM, 1, BIG[space])
    behind = behind.astype(bool)
    frames[2][behind] = CALCIUM
    frames[3], nxt = speck(frames[3], space, 100.0)
    out = tracked(frames, space, 3)
    assert (out[2][behind] == BACKGROUND).all()
    assert (out[3][nxt] == CALCIUM).all()


def test_direct_calls_on_frames_the_rule_skips_and_an_empty_pullback():
    """Frames outside ``has`` (no lumen) keep their specks and keep no other frame's; no
    frames: nothing to do."""
    lab = np.zeros((3, 8, 8), np.uint8)
    lab[:, 2, 2] = CALCIUM
    lab[2, 2, 3] = CALCIUM  # frame 2: a component of area 2 (the minimum)
    idx, has = np.arange(64) // 8, np.array([True, False, True])  # polar: ray = row
    pieces = split_small(lab, idx, np.ones(8), True, has, 2.0)
    assert [p[0] for p in pieces] == [0]
    assert calcium_frames(lab) == [False, True, True]
    restore_tracked(lab, pieces, idx, 8, np.array([True, False, False]), 3, 2, margin_rays=0)
    assert calcium_frames(lab) == [False, True, True]  # frames 1 and 2 left out: no core
    restore_tracked(lab, pieces, idx, 8, has, 3, 2, margin_rays=0)
    assert calcium_frames(lab) == [True, True, True]  # frame 2's calcium tracks it
    empty = np.zeros((0, 8, 8), np.uint8)
    assert split_small(empty, idx, np.ones(8), True, np.zeros(0, bool), 1.0) == []


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_track_frames_must_be_a_whole_number_of_frames(bad):
    with pytest.raises(InputError, match="calcium_track_frames must be an integer >= 0"):
        PostprocessSettings.from_value({"calcium_track_frames": bad})


def test_the_report_footer_says_when_tracking_keeps_specks():
    post = {"enabled": True, "calcium_min_area_mm2": 0.1, "calcium_track_frames": 3}
    assert "under 0.1 mm² removed unless a lesion within 3 frames continues them" in (
        _postprocess_note(post)
    )
    assert "unless" not in _postprocess_note({**post, "calcium_track_frames": 0})
    assert "within 1 frame continues" in _postprocess_note({**post, "calcium_track_frames": 1})
