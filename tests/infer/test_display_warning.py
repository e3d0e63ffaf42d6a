"""Colour frames in a display map that is neither sepia, grey nor a known map (matplotlib's
"CMRmap", say) are read by their luminance; infer.py says so in the pullback's warnings
(manifest, done.json, printed) and its report, because the calcium models were never trained on
such maps (benchmarks/results/colour_members_s61.md). Sepia and grey frames get no warning; a
known map ("hot") is read through its own curve, which the report says, without a warning.
Frames that look inverted (white for weak signal) are warned about too."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
from model_helpers import oracle_predictor, quiet_settings
from PIL import Image

from octseg.datasets.appearance import palette_lut
from octseg.infer.pipeline import run_inference

GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}


def _frames(folder: Path, palette: str, n: int = 2) -> Path:
    """A polar frame folder (64 A-lines x 48 samples): a dark lumen, then a bright wall."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    level = np.where(np.arange(48) < 20, 5.0, 220 * np.exp(-(np.arange(48) - 20) / 8))
    for i in range(n):
        grey = np.clip(level[None, :] + rng.normal(0, 10, (64, 48)), 0, 255).astype(np.uint8)
        Image.fromarray(palette_lut(palette)[grey]).save(folder / f"{i:03d}.png")
    spacing = {"pixel_spacing_mm": 0.04, "frame_spacing_mm": 0.2, "space": "polar"}
    (folder / "spacing.json").write_text(json.dumps(spacing))
    return folder


UNKNOWN_MAP, INVERTED, NO_BLACK = "neither a sepia nor a grey display", "look inverted", "no black"


@pytest.mark.parametrize(
    "palette, warning",
    [("CMRmap", UNKNOWN_MAP), ("Greys", INVERTED), ("YlOrBr_r", NO_BLACK)]
    + [("hot", None), ("sepia", None), ("grey", None)],
)
def test_frames_in_another_colour_map_are_warned_about(tmp_path, capsys, palette, warning):
    """ "Greys" is a grey display with white for weak signal: read as grey, so inverted."""
    inp = _frames(tmp_path / "in" / "pb1", palette)
    out = tmp_path / "out"
    settings = quiet_settings(inp, out, report=True)
    res = run_inference(settings, oracle_predictor(GRID, context_frames=1))
    rec = res["manifest"]["pullbacks"]["pb1"]
    assert rec["status"] == "done", rec
    warnings = rec.get("warnings", [])
    for key in (UNKNOWN_MAP, INVERTED, NO_BLACK):
        assert any(key in w for w in warnings) is (key == warning), warnings
    report = (out / "pb1" / "report.html").read_text()
    for key in (UNKNOWN_MAP, INVERTED, NO_BLACK):
        assert (key in report) is (key == warning)
    read_as = html.escape('the "hot" display map, read through that map')
    assert (read_as in report) is (palette == "hot")
    if warning is not None:
        (found,) = warnings
        assert "grey or sepia" in found or "black for weak signal" in found, found
        assert json.loads((out / "pb1" / "done.json").read_text())["warnings"] == warnings
        assert f"WARNING pb1: {found}" in capsys.readouterr().out
