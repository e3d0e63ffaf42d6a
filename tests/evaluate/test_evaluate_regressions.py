"""Regression tests for reviewed defects in octseg.evaluate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


def test_selfcheck_noise_keeps_signed_measures_unbiased():
    from octseg.evaluate.selfcheck import _noisy_frames

    rows = [
        {
            "frame": f,
            "lumen_area_mm2": 5.0,
            "lumen_centroid_x_mm": 0.0,
            "lumen_centroid_y_mm": -0.002,
            "max_malapposition_mm": -0.05,
            "calcium_arc_deg": 0.0,
        }
        for f in range(400)
    ]
    out = _noisy_frames(rows, [], 1.0, np.random.default_rng(0))
    for col, true in (
        ("lumen_centroid_x_mm", 0.0),
        ("lumen_centroid_y_mm", -0.002),
        ("max_malapposition_mm", -0.05),
    ):
        vals = np.array([r[col] for r in out])
        assert (vals < 0).mean() > 0.3, col  # negatives survive
        assert vals.mean() == pytest.approx(true, abs=0.003), col  # no upward bias
    arcs = np.array([r["calcium_arc_deg"] for r in out])
    assert arcs.min() >= 0.0  # non-negative measures are still clamped


def test_overlap_in_chunks_on_a_bounded_cropped_grid(monkeypatch):
    from evaluate_helpers import polar_labels

    import octseg.core.polar
    from octseg.evaluate import segmentation as seg

    calls = []
    real = octseg.core.polar.polar_to_cartesian

    def spy(t, **kw):
        calls.append((t.shape[0], kw["out_size"], kw["cart_spacing_mm"]))
        return real(t, **kw)

    monkeypatch.setattr(octseg.core.polar, "polar_to_cartesian", spy)
    # deep polar frames (800 samples), labels within 1.9 mm: the old grid was 1600 x 1600
    kw = dict(n_frames=10, n_alines=96, n_samples=800, spacing=0.025)
    auto, manual = polar_labels(seed=0, **kw), polar_labels(seed=0, lumen_mm=1.25, **kw)
    rows = seg.compare_labels("p", auto, manual, classes=(1, 2))
    assert calls and max(n for n, _, _ in calls) <= seg.CHUNK_FRAMES
    assert max(max(size) for _, size, _ in calls) <= seg.MAX_GRID
    # the labelled radius (< 2 mm) fits at the polar spacing: nothing coarsened, nothing lost
    assert {sp for _, _, sp in calls} == {0.025}
    full, _ = seg.to_cartesian(auto)  # the whole 2 * n_samples grid
    for r in rows:
        if r["scored"]:
            cls = 1 if r["class"] == "lumen" else 2
            assert r["auto_pixels"] == int((full[r["frame"]] == cls).sum())
            assert r["grid_spacing_mm"] == 0.025
    s = seg.summarize_overlap(rows, (1, 2))
    assert s["lumen"]["hd95_resolution_mm"] == 0.025
    assert 0.9 < s["lumen"]["dice"]["mean"] < 1.0  # radii 1.2 vs 1.25 mm


def test_overlap_grid_is_coarsened_to_at_most_max_grid():
    from octseg.evaluate import segmentation as seg

    lab = np.zeros((1, 64, 1000), np.uint8)
    lab[0, :, :900] = 1  # lumen out to 9 mm at 0.01 mm
    side, spacing = seg.polar_grid([(lab, np.array([0]))], (1,), 0.01)
    assert side <= seg.MAX_GRID
    assert side * spacing >= 2 * 9.0  # the whole labelled disc fits
    assert spacing == pytest.approx(2 * 9.02 / (seg.MAX_GRID - 2))  # radius + 2 samples


def test_rerun_into_the_same_folder_leaves_no_stale_outputs(tmp_path):
    from test_evaluate_cli import _tiny

    from octseg.evaluate import evaluate

    auto, manual = _tiny(tmp_path)
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    stale = [
        out / "plots" / "frame_old_measure.png",
        out / "plots" / "pullback_msa_mm2.png",
        out / "segmentation_frames.csv",
        out / "struts_matched.csv",
    ]
    for p in stale:
        p.write_bytes(b"old")
    mine = [out / "notes.txt", out / "plots" / "my_figure.png"]
    for p in mine:
        p.write_text("keep")
    r = evaluate(auto, manual, out, {"plots": False, "progress": False, "n_bootstrap": 100})
    for p in stale:  # gone, or rewritten where this run writes it too
        assert not p.exists() or p.read_bytes() != b"old", p
    assert not stale[0].exists() and not stale[1].exists() and not stale[2].exists()
    for p in mine:
        assert p.read_text() == "keep"
    assert (out / "metrics.json").exists() and (out / "frames_matched.csv").exists()
    assert set(Path(v).name for v in r.paths.values()) <= {p.name for p in out.iterdir()}
