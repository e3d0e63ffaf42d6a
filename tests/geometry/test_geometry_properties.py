"""Property tests (hypothesis) and edge cases of the geometry module."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_scenes import PS, assert_same_measurements, label_file, scene
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from octseg.cli import main
from octseg.core.errors import InputError, SchemaError
from octseg.geometry import GeometrySettings, measure_frames, measure_labels
from octseg.geometry.tables import FRAME_COLUMNS, read_csv, read_summary
from octseg.io.labels import save_labels

SHAPE = (360, 120)  # small polar frames: 1 degree per A-line
FAST = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking is slow on images
)

scenes = st.builds(
    lambda cy, cx, r, p0, width, n_struts: scene(
        "polar",
        lumen=(cy, cx, r),
        calcium=[(r + 0.1, r + 0.3, p0, (p0 + width) % 360)],
        struts=[(r - 0.15, p0 + 360.0 * k / max(n_struts, 1)) for k in range(n_struts)],
        shape=SHAPE,
    ),
    cy=st.floats(-0.1, 0.1),
    cx=st.floats(-0.1, 0.1),
    r=st.floats(0.45, 0.65),
    p0=st.floats(0, 359),
    width=st.floats(20, 300),
    n_struts=st.integers(0, 5),
)

# where the thickest calcium lies is not invariant: it rotates with the frame, and a nearly even
# lesion's thickest ray can move by much more than a rasterisation step
INVARIANT = [
    c
    for c in FRAME_COLUMNS
    if c
    not in (
        "frame",
        "position_mm",
        "lumen_centroid_x_mm",
        "lumen_centroid_y_mm",
        "calcium_max_thickness_angle_deg",
    )
]


def _close(a, b, key, scale=1.0):
    if a is None or b is None:
        assert a is None and b is None, key
        return
    if key.endswith("_deg"):
        assert a == pytest.approx(b, abs=2.0), key
    elif key.endswith("_mm2"):
        assert a == pytest.approx(b, rel=0.02, abs=2e-3 * scale**2), key
    elif key.endswith("_mm"):
        assert a == pytest.approx(b, abs=2 * PS * scale), key
    else:
        assert a == pytest.approx(b, abs=0.02), key


@FAST
@given(frame=scenes, shift=st.integers(1, SHAPE[0] - 1))
def test_rolling_polar_alines_changes_no_metric(frame, shift):
    a = measure_labels(label_file([frame], "polar")).frames[0]
    b = measure_labels(label_file([np.roll(frame, shift, axis=0)], "polar")).frames[0]
    for key in INVARIANT:
        _close(b[key], a[key], key)
    # the centroid rotates with the frame
    rot = 2 * math.pi * shift / SHAPE[0]
    if a["lumen_area_mm2"] is not None:
        x, y = a["lumen_centroid_x_mm"], a["lumen_centroid_y_mm"]
        assert b["lumen_centroid_x_mm"] == pytest.approx(
            x * math.cos(rot) - y * math.sin(rot), abs=PS
        )
        assert b["lumen_centroid_y_mm"] == pytest.approx(
            x * math.sin(rot) + y * math.cos(rot), abs=PS
        )


@FAST
@given(frame=scenes, factor=st.floats(0.5, 3.0), ffactor=st.floats(0.5, 3.0))
def test_scaling_spacing_scales_lengths_and_areas(frame, factor, ffactor):
    frames = [frame, frame]
    a = measure_labels(label_file(frames, "polar", ps=PS, fs=0.2))
    # the length settings scale with the pixels: the malapposition threshold, the catheter band
    # and the strut shadow (which struts mask a contour ray)
    scaled = GeometrySettings(
        malapposition_threshold_mm=0.09 * factor,
        catheter_radius_mm=0.45 * factor,
        strut_shadow_mm=0.5 * factor,
    )
    b = measure_labels(label_file(frames, "polar", ps=PS * factor, fs=0.2 * ffactor), scaled)
    for ra, rb in zip(a.frames, b.frames):
        for key in INVARIANT:
            va, vb = ra[key], rb[key]
            if va is None:
                assert vb is None, key
            elif key.endswith("_mm2"):
                assert vb == pytest.approx(va * factor**2, rel=1e-4, abs=1e-9), key
            elif key.endswith("_mm"):
                assert vb == pytest.approx(va * factor, rel=1e-4, abs=1e-6), key
            else:
                assert vb == pytest.approx(va, rel=1e-4, abs=1e-6), key
    for la, lb in zip(a.summary["calcium_lesions"], b.summary["calcium_lesions"]):
        assert lb["length_mm"] == pytest.approx(la["length_mm"] * ffactor)
        assert lb["volume_mm3"] == pytest.approx(la["volume_mm3"] * factor**2 * ffactor, rel=1e-4)
        assert lb["max_arc_deg"] == pytest.approx(la["max_arc_deg"])


@pytest.mark.parametrize("space", ["cartesian", "polar"])
def test_empty_frames_give_blank_values(space):
    shape = (64, 64) if space == "cartesian" else (90, 40)
    frames = np.zeros((3,) + shape, np.uint8)
    frames[1, :, :] = 2  # calcium everywhere, no lumen
    m = measure_frames(frames, space=space, pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    row0 = m.frames[0]
    assert row0["frame"] == 0 and row0["n_struts"] == 0 and row0["n_malapposed"] == 0
    counts = ("frame", "position_mm", "n_struts", "n_malapposed")
    assert all(row0[k] is None for k in FRAME_COLUMNS if k not in counts)
    assert m.frames[1]["lumen_area_mm2"] is None and m.frames[1]["calcium_area_mm2"] > 0
    assert m.frames[1]["calcium_min_depth_mm"] is None  # no lumen contour
    assert m.struts == []
    assert m.summary["lumen"] == {"mla_mm2": None, "mla_frame": None, "n_open_frames": 0}
    assert m.summary["stent"] is None


def test_strut_across_polar_seam_is_one_strut():
    frame = scene("polar", lumen=(0, 0, 0.7), shape=SHAPE)
    frame[-2:, 50:53] = 3
    frame[:2, 50:53] = 3
    m = measure_labels(label_file([frame], "polar"))
    (s,) = m.struts
    assert s["angle_deg"] == pytest.approx(0.0, abs=1.0) or s["angle_deg"] == pytest.approx(
        360.0, abs=1.0
    )
    assert s["x_mm"] == pytest.approx(0.51, abs=PS) and abs(s["y_mm"]) < PS


def test_chunking_and_sparse_frames_do_not_change_results():
    frames = [scene("cartesian", lumen=(0, 0, 0.4 + 0.05 * i), shape=(96, 96)) for i in range(5)]
    lf = label_file(frames, "cartesian", frame_index=np.array([3, 4, 8, 9, 20]))
    a = measure_labels(lf, chunk_frames=64)
    b = measure_labels(lf, chunk_frames=2)
    assert_same_measurements(a.frames, b.frames)  # floats to CHUNKING_REL: other batch shapes
    assert [r["frame"] for r in a.frames] == [3, 4, 8, 9, 20]
    assert a.frames[2]["position_mm"] == pytest.approx(8 * 0.2)


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(SchemaError, match="3-D"):
        measure_frames(
            np.zeros((8, 8), np.uint8), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.1
        )
    with pytest.raises(SchemaError, match="integer"):
        measure_frames(
            np.full((1, 8, 8), np.nan), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.1
        )
    with pytest.raises(SchemaError, match="pixel_spacing_mm"):
        measure_frames(
            np.zeros((1, 8, 8), np.uint8),
            space="polar",
            pixel_spacing_mm=float("nan"),
            frame_spacing_mm=0.1,
        )
    with pytest.raises(InputError, match="LabelFile"):
        measure_labels(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(InputError, match="stent_model"):
        GeometrySettings(stent_model="nope")
    with pytest.raises(InputError, match="unknown key"):
        GeometrySettings.from_dict({"n_rayz": 3})
    for name in ("shadow_margin_deg", "strut_margin_deg"):
        for margin in (-1.0, 11.0):
            with pytest.raises(InputError, match=name):
                GeometrySettings(**{name: margin})


def test_settings_hydra_config_matches_defaults(tmp_path):
    """The Hydra group geometry (configs/geometry/default.yaml) holds GeometrySettings'
    defaults and nothing else (tests/test_packaging.py checks infer and evaluate)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from octseg.jobs import CONFIG_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("infer", overrides=["checkpoint=c", "input=i", "output=o"])
    geometry = OmegaConf.to_container(cfg.geometry)
    assert geometry == GeometrySettings().to_dict()  # same keys, same values
    assert GeometrySettings.from_dict(geometry) == GeometrySettings()
    assert set(OmegaConf.load(CONFIG_DIR / "geometry" / "default.yaml")) == {"defaults"}
    assert GeometrySettings(stent_model="xience").strut_threshold_mm == pytest.approx(0.089)
    bad = tmp_path / "g.yaml"
    bad.write_text("max_gap_frames: -1\n")
    with pytest.raises(InputError, match="g.yaml"):
        GeometrySettings.from_yaml(bad)


def test_cli_measure(tmp_path, capsys):
    frames = [
        scene(
            "polar",
            lumen=(0, 0, 0.6),
            calcium=[(0.7, 0.9, 10, 100)],
            shape=SHAPE,
            struts=[(0.3, 0), (0.59, 120), (0.59, 240)],
        )
    ] * 2
    lf = label_file(frames, "polar")
    save_labels(tmp_path / "labels.npz", lf)
    cfg = tmp_path / "g.yaml"
    cfg.write_text("malapposition_threshold_mm: 0.1\n")
    rc = main(
        [
            "measure",
            str(tmp_path / "labels.npz"),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(cfg),
            "--quiet",
        ]
    )
    assert rc == 0
    rows = read_csv(tmp_path / "out" / "frames.csv", required=FRAME_COLUMNS)
    assert len(rows) == 2 and rows[0]["n_struts"] == 3 and rows[0]["n_malapposed"] == 1
    struts = read_csv(tmp_path / "out" / "struts.csv")
    assert len(struts) == 6
    summ = read_summary(tmp_path / "out" / "summary.json")
    assert summ["calcium_lesions"][0]["max_arc_deg"] == pytest.approx(90, abs=2)
    assert summ["stent"]["n_struts"] == 6 and summ["stent"]["n_malapposed"] == 2
    assert not list((tmp_path / "out").glob(".tmp-*"))
    # a broken file is a one-line error naming it
    (tmp_path / "bad.npz").write_bytes(b"nope")
    assert main(["measure", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o2")]) == 1
    assert "bad.npz" in capsys.readouterr().err
