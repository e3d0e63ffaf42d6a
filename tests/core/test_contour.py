"""The stent contour: a smooth closed curve through the struts, round across arcs without struts."""

import math

import pytest
import torch

from octseg.core.contour import stent_contour


def _contour(angles_deg, radii, centre=(0.3, -0.2)):
    cy, cx = centre
    pts = [
        [cy + r * math.sin(math.radians(a)), cx + r * math.cos(math.radians(a))]
        for a, r in zip(angles_deg, radii)
    ]
    return stent_contour(
        torch.tensor([pts], dtype=torch.float64),
        torch.ones(1, len(pts), dtype=torch.bool),
        torch.tensor([centre], dtype=torch.float64),
    )


@pytest.mark.parametrize("gap_deg", [45.0, 120.0, 200.0, 280.0])
def test_struts_on_a_circle_give_the_circle_across_any_gap(gap_deg):
    # five struts on a circle of radius 1.4 mm, spread over 360 - gap degrees, shuffled order
    span = 360.0 - gap_deg
    angles = [(30.0 + span * k / 4) % 360 for k in (3, 0, 4, 1, 2)]
    curve, mask, area = _contour(angles, [1.4] * 5)
    # a chord across a 200° gap would lose 47% of the area, across 120° 20%; what is left is
    # the polygon of 32 samples per segment (0.4% across 280°)
    assert float(area[0]) == pytest.approx(math.pi * 1.4**2, rel=0.005)
    d = curve[0][mask[0]] - torch.tensor([0.3, -0.2], dtype=torch.float64)
    assert torch.sqrt((d * d).sum(-1)).sub(1.4).abs().max() < 1e-9  # every sample on the circle


def test_the_curve_passes_through_every_strut_and_is_ordered_by_angle():
    angles = [10.0, 100.0, 170.0, 250.0, 300.0]
    radii = [1.2, 1.5, 1.3, 1.6, 1.4]
    curve, mask, area = _contour(angles, radii)
    samples = curve[0][mask[0]]
    assert samples.shape == (5 * 32, 2)
    d = samples - torch.tensor([0.3, -0.2], dtype=torch.float64)
    phi = torch.rad2deg(torch.remainder(torch.atan2(d[:, 0], d[:, 1]), 2 * math.pi))
    rho = torch.sqrt((d * d).sum(-1))
    for k, (a, r) in enumerate(zip(angles, radii)):  # segment k starts at strut k
        assert float(phi[32 * k]) == pytest.approx(a, abs=1e-9)
        assert float(rho[32 * k]) == pytest.approx(r, abs=1e-9)
    unwrapped = torch.remainder(phi - angles[0], 360.0)
    assert bool((unwrapped[1:] > unwrapped[:-1]).all())  # one turn, no loops
    assert 1.19 < float(rho.min()) and float(rho.max()) < 1.65  # no wild overshoot
    assert math.pi * 1.2**2 < float(area[0]) < math.pi * 1.6**2


def test_fewer_than_three_struts_give_no_contour_and_padding_is_ignored():
    _, mask, area = _contour([0.0, 90.0], [1.0, 1.0])
    assert not bool(mask.any()) and float(area[0]) == 0.0
    pts = torch.tensor(
        [[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [9.0, 9.0]]], dtype=torch.float64
    )
    valid = torch.tensor([[True, True, True, True, False]])
    _, mask, area = stent_contour(pts, valid, torch.zeros(1, 2, dtype=torch.float64))
    assert int(mask.sum()) == 4 * 32
    assert float(area[0]) == pytest.approx(math.pi, rel=0.002)
