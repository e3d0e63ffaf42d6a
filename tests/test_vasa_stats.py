"""benchmarks/vasa_stats.py: size, depth and darkness of labelled vasa vasorum."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import vasa_stats


def test_a_disc_behind_the_lumen_is_measured_as_drawn():
    yy, xx = np.mgrid[:200, :200]
    lumen = xx < 40  # the lumen border is the column x = 40
    vasa = np.hypot(yy - 100, xx - 80) <= 10  # 0.2 mm across, centre 0.4 mm behind it
    grey = np.where(vasa, 0.3, 0.75).astype(np.float32)
    grey[lumen] = 0.05
    (c,) = vasa_stats.components(grey, lumen, vasa, 0.01)
    assert c["diameter_mm"] == pytest.approx(0.2, rel=0.03)  # pixelised disc
    assert c["depth_mm"] == pytest.approx(0.40, abs=0.015)  # mean over the disc, 1 px offset
    assert c["contrast"] == pytest.approx(0.4, rel=1e-6)
    two = vasa | (np.hypot(yy - 30, xx - 150) <= 5)
    assert len(vasa_stats.components(grey, lumen, two, 0.01)) == 2
