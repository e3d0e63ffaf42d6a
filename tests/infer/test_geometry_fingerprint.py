"""The geometry settings in an inference run's fingerprint: the score_borderline margins (added
in session 57; they add a field and change no number) are left out at their defaults, so
outputs written before them keep their fingerprint and a resumed run keeps them."""

from __future__ import annotations

from octseg.geometry.settings import GeometrySettings
from octseg.infer.settings import InferSettings

MARGINS = ("score_margin_arc_deg", "score_margin_thickness_mm", "score_margin_length_mm")


def _fingerprinted(geometry: dict) -> dict:
    s = InferSettings(checkpoint=None, input="i", output="o", geometry=geometry)
    return s.output_affecting()["geometry"]


def test_the_margins_at_their_defaults_leave_the_fingerprint_as_before():
    full = GeometrySettings().to_dict()  # what the composed Hydra config gives
    before = {k: v for k, v in full.items() if k not in MARGINS}
    assert set(MARGINS) <= set(full)
    assert _fingerprinted(full) == before
    assert _fingerprinted(before) == before


def test_a_margin_that_is_given_enters_the_fingerprint():
    full = GeometrySettings().to_dict() | {"score_margin_thickness_mm": 0.05}
    fp = _fingerprinted(full)
    assert fp["score_margin_thickness_mm"] == 0.05
    assert "score_margin_arc_deg" not in fp
    assert fp != _fingerprinted(GeometrySettings().to_dict())
