"""Calcium by a majority of neighbouring frames (``calcium_frame_vote``, octseg.model.frame_vote):
on small arrays worked out by hand, and through :func:`postprocess_labels` polar and Cartesian."""

from __future__ import annotations

import numpy as np
import pytest
from test_postprocess import BIG, PS, SPACES, R, annulus, run
from test_track import bare, lesion

from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.core.errors import InputError
from octseg.geometry import measure_frames
from octseg.model.frame_vote import vote_calcium
from octseg.model.postprocess import PostprocessSettings
from octseg.report.pullback import _postprocess_note

B, C = BACKGROUND, CALCIUM


def rows(*frames: str) -> np.ndarray:
    """One-row frames from strings: '.' background, 'c' calcium, 'L' lumen, 's' strut, 'g'
    guidewire."""
    code = {".": B, "c": C, "L": LUMEN, "s": STRUT, "g": GUIDEWIRE}
    return np.array([[[code[ch] for ch in f]] for f in frames], np.uint8)


def test_a_one_frame_excursion_goes_and_a_one_frame_gap_is_filled():
    """Frame 2 reaches one pixel further than its neighbours (that pixel goes) and misses one
    they both have (it is filled); the end frames keep their own calcium."""
    out = vote_calcium(rows("cc..", "cc..", "c.c.", "cc..", "cc.c"), 3)
    np.testing.assert_array_equal(out, rows("cc..", "cc..", "cc..", "cc..", "cc.c"))


def test_each_frame_votes_with_its_neighbours_labels_before_the_vote():
    """Frame 1 becomes calcium (frames 0 and 2 have it), but frame 2 is decided on frame 1's
    own label (none), so it goes: a vote that read already-changed frames would keep it."""
    out = vote_calcium(rows("c", ".", "c", ".", "."), 3)
    np.testing.assert_array_equal(out, rows("c", "c", ".", ".", "."))


def test_a_window_longer_than_the_pullback_and_even_windows():
    """9 frames about a 3-frame pullback: the ends repeated, so each frame counts itself or its
    end neighbour several times; an even window is an error."""
    out = vote_calcium(rows("c", "c", "."), 9)
    np.testing.assert_array_equal(out, rows("c", "c", "."))
    with pytest.raises(ValueError, match="odd"):
        vote_calcium(rows("c", "."), 4)


def test_a_steadily_growing_border_is_kept_frame_by_frame():
    """Nested borders (a lesion that widens along the pullback): the median of three nested
    borders is the middle one, so nothing changes."""
    frames = rows("c....", "cc...", "ccc..", "cccc.", "ccccc")
    np.testing.assert_array_equal(vote_calcium(frames.copy(), 3), frames)
    np.testing.assert_array_equal(vote_calcium(frames.copy(), 5), frames)


def test_only_calcium_and_tissue_change():
    """Lumen, strut and guidewire pixels stay even where both neighbours have calcium; a frame
    marked without lumen (``has`` false) stays as it is."""
    out = vote_calcium(rows("cccc", "Lsg.", "cccc"), 3)
    np.testing.assert_array_equal(out[1], rows("Lsgc")[0])
    out = vote_calcium(rows("cccc", "....", "cccc"), 3, has=np.array([True, False, True]))
    np.testing.assert_array_equal(out[1], rows("....")[0])


def test_window_one_and_a_single_frame_change_nothing():
    frames = rows("c.", ".c", "c.")
    np.testing.assert_array_equal(vote_calcium(frames.copy(), 1), frames)
    np.testing.assert_array_equal(vote_calcium(frames[:1].copy(), 3), frames[:1])


def test_five_frames_need_three_votes():
    """With 5 frames a pixel needs calcium on 3 of them: two neighbours are not enough."""
    out = vote_calcium(rows(".", "c", ".", "c", "."), 5)
    np.testing.assert_array_equal(out[2], rows(".")[0])  # 2 of 5
    out = vote_calcium(rows("c", "c", ".", "c", "."), 5)
    np.testing.assert_array_equal(out[2], rows("c")[0])  # 3 of 5


def thickness(labels, space, column="calcium_max_thickness_mm"):
    """Each frame's maximum calcium thickness (mm), or another ``column``, by the product's
    geometry."""
    h, w = labels.shape[1:]
    center = ((h - 1) / 2, (w - 1) / 2) if space == "cartesian" else None
    m = measure_frames(
        labels, space=space, pixel_spacing_mm=PS, frame_spacing_mm=0.2, catheter_center=center
    )
    return [row[column] for row in m.frames]


def thick_frames(space, thick_on=2, n=5):
    """``n`` frames of a 60° lesion 0.5 mm thick; on frame ``thick_on`` it is 0.3 mm thicker
    over 20° of its arc (a one-frame excursion of the outer border)."""
    frames = [lesion(space) for _ in range(n)]
    annulus(
        frames[thick_on], space, R + 0.6, R + 0.9, arc=(110, 130), value=CALCIUM, shape=BIG[space]
    )
    return frames


@pytest.mark.parametrize("space", SPACES)
def test_the_vote_removes_a_one_frame_thickness_excursion_in_postprocessing(space):
    """Through postprocess_labels and the geometry: without the vote frame 2 reads 0.8 mm
    thick, with it 0.5 mm like its neighbours (within one pixel, 0.01 mm, and the ray
    sampling); the other frames and the lumen are unchanged."""
    frames = thick_frames(space)
    off = run(frames, space, settings={"calcium_frame_vote": 1})
    on = run(frames, space, settings={"calcium_frame_vote": 3})
    np.testing.assert_array_equal((on == LUMEN), (off == LUMEN))
    np.testing.assert_array_equal(on[[0, 1, 3, 4]], off[[0, 1, 3, 4]])
    t_off, t_on = (thickness(x, space) for x in (off, on))
    assert t_off[2] == pytest.approx(0.8, abs=0.03)
    assert t_on[2] == pytest.approx(t_on[1], abs=0.02)
    assert t_on[2] == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("space", SPACES)
def test_a_frame_between_two_lesions_is_filled_and_a_lone_frame_goes(space):
    """Lesion frames 0, 1, 3, 4 and 7: frame 2 (between two) gets the lesion, frame 7 (alone)
    loses it, frame 5 (one neighbour) stays bare."""
    has = [True, True, False, True, True, False, False, True, False, False]
    frames = [lesion(space) if h else bare(space) for h in has]
    out = run(frames, space, settings={"calcium_frame_vote": 3, "calcium_min_area_mm2": 0.05})
    assert (out == CALCIUM).any(axis=(1, 2)).tolist() == [True] * 5 + [False] * 5


@pytest.mark.parametrize("space", SPACES)
def test_the_minimum_area_applies_to_what_the_vote_makes(space):
    """Frames 0 and 2 hold lesions that overlap over 3° of arc (about 0.035 mm²), frame 1
    none: the vote gives frame 1 that sliver, and the minimum area (0.05 mm²), applied after
    the vote, removes it."""
    first = lesion(space)
    last = annulus(
        bare(space), space, R + 0.1, R + 0.6, arc=(147, 207), value=CALCIUM, shape=BIG[space]
    )
    frames = [first, bare(space), last]
    post = {"calcium_frame_vote": 3}
    assert (run(frames, space, settings=post)[1] == CALCIUM).any()
    out = run(frames, space, settings={**post, "calcium_min_area_mm2": 0.05})
    assert not (out[1] == CALCIUM).any()
    assert (out[[0, 2]] == CALCIUM).any(axis=(1, 2)).all()


@pytest.mark.parametrize("key", ["calcium_frame_vote", "calcium_outer_median"])
@pytest.mark.parametrize("bad", [0, 2, -3, True, 1.5, "3"])
def test_bad_windows_are_refused(key, bad):
    """Both rules along the pullback (this one and octseg.model.outer_median) take odd
    windows only."""
    with pytest.raises(InputError, match=f"{key} must be odd >= 1"):
        PostprocessSettings.from_value({key: bad})


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("calcium_frame_vote", "calcium by the majority of 3 neighbouring frames"),
        ("calcium_outer_median", "outer calcium borders the median of 3 neighbouring frames"),
    ],
)
def test_the_report_names_the_rule_when_on(key, words):
    assert words in _postprocess_note({key: 3})
    assert "neighbouring frames" not in _postprocess_note({key: 1})
