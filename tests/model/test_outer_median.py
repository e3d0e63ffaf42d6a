"""The outer calcium border as the median of neighbouring frames (``calcium_outer_median``,
octseg.model.outer_median): on small polar arrays worked out by hand, and through
:func:`postprocess_labels` and the geometry, polar and Cartesian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_frame_vote import rows, thick_frames, thickness
from test_postprocess import BIG, SPACES, R, annulus, run
from test_track import bare

from octseg.core.classes import BACKGROUND, CALCIUM, LUMEN
from octseg.model import outer_median as om


def polar_median(*frames: str, window: int = 3) -> np.ndarray:
    """The rule on one-A-line polar frames (rows of samples, radius = column)."""
    lab = torch.from_numpy(rows(*frames))
    w = lab.shape[2]
    index, r = torch.zeros(w, dtype=torch.long), torch.arange(w, dtype=torch.float32)
    inner, own = om.calcium_extent(lab, index, r, 1)
    om.apply_borders(lab, inner, own, om.median_borders(own, window), index, r)
    return lab.numpy()


def test_the_outer_border_is_the_median_of_three_frames():
    """Outer borders (last calcium sample) 4, 7, 4, 6, 6: frame 1 reaches 3 samples further
    than both neighbours and is cut back to the median of (4, 7, 4), 4; frame 2 is grown to
    the median of (7, 4, 6), 6; frame 3 (4, 6, 6) keeps 6. The inner border (the lumen) and
    the end frames stay; the medians come from the borders before any change."""
    out = polar_median("LLccc...", "LLcccccc", "LLccc...", "LLccccc.", "LLccccc.")
    want = rows("LLccc...", "LLccc...", "LLccccc.", "LLccccc.", "LLccccc.")
    np.testing.assert_array_equal(out, want)


def test_a_ray_without_calcium_in_a_neighbour_keeps_its_border():
    """Frame 1's neighbour has no calcium on the ray (a lesion's end): frame 1 keeps its own
    border, and the ray without calcium stays without."""
    out = polar_median("LL......", "LLcccccc", "LLcc....", "LL......")
    assert out.tolist() == rows("LL......", "LLcccccc", "LLcc....", "LL......").tolist()


def test_struts_lumen_and_gaps_inside_the_calcium_stay():
    """Growing the border fills tissue only: a strut and the lumen beyond it stay; a gap inside
    the frame's own calcium is not filled (only tissue beyond its own border)."""
    out = polar_median("LLcccccc", "LLc.cs..", "LLcccccc")
    np.testing.assert_array_equal(out[1], rows("LLc.cscc")[0])


def test_a_deep_deposit_under_shallow_neighbours_keeps_its_ray():
    """Frame 1's calcium lies deeper than both neighbours' outer borders: the median (3) is
    nearer than its inner border (5), so the ray keeps its calcium as it is. With a second
    deposit farther out (outer border 8, median 4) that deposit goes, and the gap inside the
    frame's own calcium is not filled."""
    out = polar_median("LLcc....", "LL...ccc", "LLcc....")
    np.testing.assert_array_equal(out[1], rows("LL...ccc")[0])
    out = polar_median("LLccc....", "LLcc...cc", "LLccc....")
    np.testing.assert_array_equal(out[1], rows("LLcc.....")[0])


def test_even_windows_are_refused_by_the_functions():
    with pytest.raises(ValueError, match="odd"):
        om.median_borders(torch.zeros(5, 3), 4)


def test_window_one_or_a_short_pullback_change_nothing():
    frames = ("LLcc..", "LLcccc", "LLcc..")
    assert polar_median(*frames, window=1).tolist() == rows(*frames).tolist()
    assert polar_median(*frames[:2], window=3).tolist() == rows(*frames[:2]).tolist()


@pytest.mark.parametrize("space", SPACES)
def test_a_one_frame_thickness_excursion_goes_and_the_arc_stays(space):
    """Through postprocess_labels and the geometry: frame 2's outer border reaches 0.3 mm
    further over 20° of the lesion's arc; with the rule it reads 0.5 mm like its neighbours
    (within 0.03 mm: pixels and ray sampling), and every frame's arc and the lumen are as
    without it."""
    frames = thick_frames(space)
    off = run(frames, space)
    on = run(frames, space, settings={"calcium_outer_median": 3})
    np.testing.assert_array_equal(on == LUMEN, off == LUMEN)
    t_off, t_on = thickness(off, space), thickness(on, space)
    assert t_off[2] == pytest.approx(0.8, abs=0.03)
    assert t_on[2] == pytest.approx(0.5, abs=0.03)
    np.testing.assert_array_equal(on[[0, 1, 3, 4]], off[[0, 1, 3, 4]])
    a_off, a_on = thickness(off, space, "calcium_arc_deg"), thickness(on, space, "calcium_arc_deg")
    assert a_on == pytest.approx(a_off, abs=1e-6)


@pytest.mark.parametrize("space", SPACES)
def test_lesion_ends_and_a_shifted_arc_keep_their_own_calcium(space):
    """A lesion on frames 1-3 whose arc turns by 10° a frame: the end frames 1 and 3 and the
    arc ends of frame 2 (where a neighbour has no calcium on the ray) are unchanged; every
    ray with calcium keeps it."""
    frames = (
        [bare(space)]
        + [
            annulus(
                bare(space),
                space,
                R + 0.1,
                R + 0.6,
                arc=(90 + d, 150 + d),
                value=CALCIUM,
                shape=BIG[space],
            )
            for d in (0, 10, 20)
        ]
        + [bare(space)]
    )
    off = run(frames, space)
    on = run(frames, space, settings={"calcium_outer_median": 3})
    np.testing.assert_array_equal(on, off)


@pytest.mark.parametrize("space", SPACES)
def test_a_deep_frame_keeps_its_arc(space):
    """Frame 2's lesion lies deeper (1.8-2.1 mm) than its neighbours' (1.1-1.4 mm) over the
    same 60°: the median border is nearer than frame 2's calcium, so frame 2 keeps its calcium
    as it is (arc, depth and thickness)."""
    arc = (90, 150)
    frames = [
        annulus(bare(space), space, R + r0, R + r0 + 0.3, arc=arc, value=CALCIUM, shape=BIG[space])
        for r0 in (0.1, 0.1, 0.8, 0.1, 0.1)
    ]
    off, on = run(frames, space), run(frames, space, settings={"calcium_outer_median": 3})
    a_off, a_on = (thickness(x, space, "calcium_arc_deg") for x in (off, on))
    d_off, d_on = (thickness(x, space, "calcium_min_depth_mm") for x in (off, on))
    assert a_on[2] == pytest.approx(a_off[2], abs=1e-6)
    assert d_on[2] == pytest.approx(d_off[2], abs=1e-6)
    assert thickness(on, space)[2] == pytest.approx(thickness(off, space)[2], abs=1e-6)
    assert a_on[2] == pytest.approx(60, abs=1.5)


@pytest.mark.parametrize("space", SPACES)
def test_small_chunks_give_the_same_labels(space):
    """The two passes run chunk by chunk: 2 frames a step gives what 8 do."""
    frames = thick_frames(space, n=7)
    post = {"calcium_outer_median": 3}
    a = run(frames, space, settings={**post, "chunk_frames": 2})
    np.testing.assert_array_equal(a, run(frames, space, settings={**post, "chunk_frames": 8}))


@pytest.mark.parametrize("space", SPACES)
def test_a_frame_without_lumen_does_not_move_its_neighbours_border(space):
    """Frames 1 and 3 reach 0.3 mm further over 20° than frame 2; frame 1 has no lumen (its
    calcium is the network's, unchecked). Frame 2's window is not full where frame 1 is no
    neighbour, so frame 2 keeps its 0.5 mm instead of growing to their 0.8 mm; frame 1 itself
    is left as it is."""
    frames = thick_frames(space, thick_on=1)
    frames[3] = thick_frames(space, thick_on=3)[3]
    frames[1][frames[1] == LUMEN] = BACKGROUND
    off, on = run(frames, space), run(frames, space, settings={"calcium_outer_median": 3})
    np.testing.assert_array_equal(on[[0, 1, 2]], off[[0, 1, 2]])
    assert thickness(on, space)[2] == pytest.approx(0.5, abs=0.03)
    with_lumen = thick_frames(space, thick_on=1)  # the control: frame 1 with its lumen
    with_lumen[3] = frames[3]
    grown = run(with_lumen, space, settings={"calcium_outer_median": 3})
    assert thickness(grown, space)[2] == pytest.approx(0.8, abs=0.03)
