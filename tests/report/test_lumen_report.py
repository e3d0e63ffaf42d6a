"""The report's minimal-lumen-area card names the frames whose lumen runs out of the image."""

from __future__ import annotations

from geometry_scenes import label_file, scene

from octseg.geometry import measure_labels
from octseg.report import pullback as report


def _html(frames) -> str:
    m = measure_labels(label_file(frames, "polar"))
    return report.render_report(
        pullback_id="p",
        info={"frame_spacing_mm": 0.2, "frames": len(frames), "space": "polar"},
        frames=m.frames,
        struts=[],
        summary=m.summary,
        overlays=[],
        model={"checkpoint": "m.ckpt", "classes": [0, 1, 2, 3, 4]},
    )


def test_mla_card_counts_frames_whose_lumen_leaves_the_image():
    inside = scene("polar", lumen=(0.0, 0.0, 0.5))
    beyond = scene("polar", lumen=(0.1, 0.7, 0.9))  # past the grid's 1.5 mm depth on one side
    assert "lumen beyond the image in 2 frames" in _html([inside, beyond, beyond])
    assert "lumen beyond the image" not in _html([inside, inside])
