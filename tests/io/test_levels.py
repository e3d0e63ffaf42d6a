"""Frames that look inverted (white for weak signal) are told by their median grey level
(octseg.io.levels); real frames are mostly dark."""

from __future__ import annotations

import numpy as np

from octseg.io.levels import (
    DARK_FLOOR,
    INVERTED_MEDIAN,
    input_warnings,
    level_metadata,
    level_warnings,
)


def test_dark_frames_pass_and_inverted_ones_are_warned():
    rng = np.random.default_rng(0)
    dark = [np.clip(rng.gamma(1.0, 0.08, (64, 48)), 0, 1) for _ in range(3)]
    meta = level_metadata(dark)
    assert meta["median_level"] < 0.1 and level_warnings(meta) == []
    inverted = level_metadata([1 - f for f in dark])
    assert inverted["median_level"] > 0.9
    (warning,) = level_warnings(inverted)
    assert "look inverted" in warning and f"{inverted['median_level']:.2f}" in warning
    assert level_metadata([]) == {} and level_warnings({}) == []
    raised = level_metadata([0.3 + 0.7 * f for f in dark])  # a display window: black at 0.3
    assert raised["dark_level"] > DARK_FLOOR
    (warning,) = level_warnings(raised)
    assert "no black" in warning
    noise = level_metadata([rng.uniform(0, 1, (64, 48)) for _ in range(3)])  # as tests use
    assert level_warnings(noise) == [] and noise["median_level"] < INVERTED_MEDIAN


def test_input_warnings_gather_the_colour_map_and_the_levels():
    meta = {"display": "other", "display_off_sepia_share": 0.9, "median_level": 0.9}
    got = input_warnings(meta)
    assert len(got) == 2 and "neither a sepia" in got[0] and "look inverted" in got[1]


def test_real_frames_are_dark_and_their_inversion_is_not(danilov_dir):
    from octseg.datasets.danilov.reader import list_danilov, read_rgb
    from octseg.io.color import sepia_to_gray

    paths, _ = list_danilov(danilov_dir)
    grey = [sepia_to_gray(read_rgb(paths[i])) for i in range(0, len(paths), 15)]
    assert level_metadata(grey)["median_level"] <= 0.13
    assert level_warnings(level_metadata(grey)) == []
    (inverted,) = level_warnings(level_metadata([1 - g for g in grey]))
    assert "look inverted" in inverted  # one warning, not also "no black"


def test_real_frames_in_a_map_without_black_are_warned(danilov_dir):
    """ "YlOrBr_r" (darkest colour brown) passes for sepia; its frames have no black."""
    from octseg.datasets.danilov.reader import list_danilov, read_rgb
    from octseg.datasets.robustness import redraw
    from octseg.io.color import display_metadata, rgb_frames_to_gray

    paths, _ = list_danilov(danilov_dir)
    drawn = [redraw(read_rgb(paths[i]), "YlOrBr_r") for i in (0, len(paths) // 2)]
    assert display_metadata(drawn)["display"] == "sepia"  # the colour check lets it through
    (warning,) = level_warnings(level_metadata([rgb_frames_to_gray(d) for d in drawn]))
    assert "no black" in warning
