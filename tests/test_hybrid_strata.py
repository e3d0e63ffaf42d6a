"""benchmarks/hybrid_strata.py and ``hybrid_pool.py strata``: evaluate.py's pooled tables split by
the lesion kind and contrast the hybrid drew on each frame, the calcium's contrast-to-noise ratio
measured on the hybrid image, and the params links they need."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import hybrid_pool as hp
from benchmarks import hybrid_strata as hs
from octseg.core.classes import CALCIUM, LUMEN, STRUT


def _lesion(start, stop, kind, contrast):
    return {"start": start, "stop": stop, "kind": kind, "contrast": contrast}


PARAMS = {
    "lesions": [
        _lesion(2, 6, "superficial", 0.2),
        _lesion(5, 8, "deep", 0.6),
        _lesion(10, 12, "nodule", 0.4),
    ]
}


def test_frame_strata_kind_or_several_and_the_faintest_contrast():
    assert hs.frame_strata(PARAMS, 2) == ("superficial", "clear (contrast < 0.35)")
    assert hs.frame_strata(PARAMS, 5) == ("several lesions", hs.FAINT)  # 0.2 and 0.6 -> 0.6
    assert hs.frame_strata(PARAMS, 7) == ("deep", hs.FAINT)
    assert hs.frame_strata(PARAMS, 11) == ("nodule", "medium (0.35-0.5)")
    assert hs.frame_strata(PARAMS, 6) == ("deep", hs.FAINT)  # stop is exclusive for the first
    assert hs.frame_strata(PARAMS, 9) == ("no lesion drawn", "-")


def test_a_kind_the_table_does_not_know_still_gets_its_row():
    df = pd.DataFrame(
        {"kind": ["superficial", "sheet"], "contrast": ["-", "-"], "manual_pixels": [5, 5]}
        | {"auto_pixels": [5, 0], "scored": [1, 1], "dice": [1.0, 0.0]}
        | {
            f"{s}_calcium_{c}": [1.0, None]
            for s in ("auto", "manual")
            for c in ("arc_deg", "max_thickness_mm")
        }
    )
    out = hs.strata(df)
    assert list(out)[:2] == ["kind: superficial", "kind: sheet"]
    assert out["kind: sheet"]["missed"] == 1


def _evaluated(root, frames):
    """evaluate.py-like pooled outputs: (frame, manual px, auto px, dice, manual arc, auto arc)."""
    root.mkdir(parents=True)
    seg, fm = [], []
    for f, man, auto, dice, marc, aarc in frames:
        seg.append(("p-v0", f, "calcium", dice, auto, man, 1 if man or auto else 0))
        seg.append(("p-v0", f, "lumen", 0.9, 10, 10, 1))
        fm.append(("p-v0", f, aarc, marc, 0.5 if auto else None, 0.4 if man else None))
    pd.DataFrame(
        seg,
        columns=["pullback_id", "frame", "class", "dice", "auto_pixels", "manual_pixels", "scored"],
    ).to_csv(root / "segmentation_frames.csv", index=False)
    cols = ["auto_calcium_arc_deg", "manual_calcium_arc_deg"]
    cols += ["auto_calcium_max_thickness_mm", "manual_calcium_max_thickness_mm"]
    pd.DataFrame(fm, columns=["pullback_id", "frame", *cols]).to_csv(
        root / "frames_matched.csv", index=False
    )
    return root


def test_strata_means_missed_and_false_frames(tmp_path):
    pool = tmp_path / "pool"
    (pool / "params").mkdir(parents=True)
    (pool / "params" / "p-v0.json").write_text(json.dumps(PARAMS))
    ev = _evaluated(
        tmp_path / "ev",
        [
            (2, 100, 80, 0.8, 40.0, 30.0),  # superficial: found, arc -10
            (3, 100, 0, 0.0, 50.0, None),  # superficial: missed
            (7, 50, 50, 0.6, 20.0, 26.0),  # deep: found, arc +6
            (9, 0, 30, 0.0, None, 10.0),  # no truth calcium: false calcium
            (13, 0, 0, float("nan"), None, None),  # nothing on either side
        ],
    )
    out = hs.strata(hs.frames_table(pool, ev))
    assert list(out) == [  # kinds, then contrast clear .. faint, then the totals
        "kind: superficial",
        "kind: deep",
        "contrast: clear (contrast < 0.35)",
        "contrast: " + hs.FAINT,
        "stent: no stent",
        "all truth calcium",
        hs.NONE,
        hs.NONE_STENT,
    ]
    sup = out["kind: superficial"]
    assert sup["frames"] == 2 and sup["missed"] == 1
    assert sup["dice"] == pytest.approx(0.4)
    assert sup["arc_bias_deg"] == pytest.approx(-10.0)
    assert sup["thickness_bias_mm"] == pytest.approx(0.1)
    assert out["kind: deep"]["arc_bias_deg"] == pytest.approx(6.0)
    assert out["all truth calcium"]["frames"] == 3
    assert out["all truth calcium"]["arc_abs_err_deg"] == pytest.approx(8.0)
    assert out["contrast: " + hs.FAINT]["frames"] == 1
    assert out[hs.NONE] == {"frames": 2, "false": 1}
    assert out[hs.NONE_STENT] == {"frames": 0, "false": 0}
    md = hs.markdown({"run": out})
    assert "| kind: superficial | 2 | 0.40 | 1 | -10.0 (10.0) | +0.100 |" in md


def test_stent_strata_split_frames_behind_struts(tmp_path):
    pool = tmp_path / "pool"
    (pool / "params").mkdir(parents=True)
    stented = PARAMS | {"stent": {"start": 3, "stop": 10}}
    (pool / "params" / "p-v0.json").write_text(json.dumps(stented))
    assert [hs.stent_stratum(stented, f) for f in (2, 3, 9, 10)] == [
        hs.UNSTENTED,
        hs.STENTED,
        hs.STENTED,
        hs.UNSTENTED,
    ]
    assert hs.stent_stratum(PARAMS | {"stent": None}, 5) == hs.UNSTENTED
    ev = _evaluated(
        tmp_path / "ev",
        [
            (2, 100, 80, 0.8, 40.0, 30.0),  # no stent: found, arc -10
            (3, 100, 0, 0.0, 50.0, None),  # behind struts: missed
            (7, 50, 50, 0.6, 20.0, 26.0),  # behind struts: found, arc +6
            (9, 0, 30, 0.0, None, 10.0),  # behind struts, no truth calcium: false calcium
            (13, 0, 40, 0.0, None, 10.0),  # no stent, no truth calcium: false calcium
        ],
    )
    out = hs.strata(hs.frames_table(pool, ev))
    behind, free = out["stent: " + hs.STENTED], out["stent: " + hs.UNSTENTED]
    assert (behind["frames"], behind["missed"], free["frames"], free["missed"]) == (2, 1, 1, 0)
    assert behind["dice"] == pytest.approx(0.3) and behind["arc_bias_deg"] == pytest.approx(6.0)
    assert out[hs.NONE] == {"frames": 2, "false": 2}
    assert out[hs.NONE_STENT] == {"frames": 1, "false": 1}
    md = hs.markdown({"run": out})
    assert f"| {hs.NONE_STENT} | 1 | | 1 found calcium | | |" in md


def test_strata_names_a_missing_params_file(tmp_path):
    ev = _evaluated(tmp_path / "ev", [(2, 100, 80, 0.8, 40.0, 30.0)])
    with pytest.raises(SystemExit, match=r"p-v0\.json missing: .*pool --cohort"):
        hs.frames_table(tmp_path / "pool", ev)


def test_pool_links_params_from_the_cohort_build(tmp_path):
    console = tmp_path / "c"
    for part in ("inputs", "manual"):
        (console / part / "hyb-val-140-186-v0").mkdir(parents=True)
    build = tmp_path / "b" / "val" / "hyb-val-140-186-v0"
    build.mkdir(parents=True)
    (build / "params.json").write_text(json.dumps(PARAMS))
    hp.pool(tmp_path / "pool", {"d3": console})
    assert hp.link_params(tmp_path / "pool", {"d3": console}, {"d3": tmp_path / "b"}) == 1
    link = tmp_path / "pool" / "params" / "d3-v0.json"
    assert json.loads(link.read_text()) == PARAMS
    with pytest.raises(SystemExit, match=r"draw d3: 0 params.json for hyb-val-140-186-v0"):
        hp.link_params(tmp_path / "pool", {"d3": console}, {"d3": tmp_path / "elsewhere"})
    with pytest.raises(SystemExit, match=r"--cohort d4: no draw of that name"):
        hp.link_params(tmp_path / "pool", {"d3": console}, {"d4": tmp_path / "b"})


def test_strata_figure_is_written(tmp_path):
    pool = tmp_path / "pool"
    (pool / "params").mkdir(parents=True)
    (pool / "params" / "p-v0.json").write_text(json.dumps(PARAMS))
    ev = _evaluated(tmp_path / "ev", [(2, 100, 80, 0.8, 40.0, 30.0), (7, 50, 0, 0.0, 20.0, None)])
    rows = hs.strata(hs.frames_table(pool, ev))
    assert rows["kind: deep"]["arc_bias_deg"] is None  # missed: no frame with both arcs
    hs.plot({"a": rows, "b": rows}, tmp_path / "s.png", "title")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _frame(rng, dark=0.7, strut_row=None):
    """Polar frame of 360 A-lines x 120 samples: lumen to sample 19, tissue 1.0 +- 0.1, calcium
    (value ``dark``) on A-lines 100-139, samples 30-49."""
    lab = np.zeros((360, 120), np.uint8)
    lab[:, :20] = LUMEN
    img = rng.normal(1.0, 0.1, lab.shape)
    lab[100:140, 30:50] = CALCIUM
    img[100:140, 30:50] = rng.normal(dark, 0.1, (40, 20))
    if strut_row is not None:  # a strut and its black shadow through the reference band
        lab[strut_row, 20:23] = STRUT
        img[strut_row, 23:] = 0.0
    return img, lab


def test_calcium_cnr_against_tissue_beside_the_lesion_at_its_depth():
    rng = np.random.default_rng(0)
    img, lab = _frame(rng)
    assert hs.calcium_cnr(img, lab) == pytest.approx(3.0, abs=0.3)  # (1.0 - 0.7) / 0.1
    assert hs.calcium_cnr(*_frame(rng, dark=0.95)) == pytest.approx(0.5, abs=0.2)
    # a strut A-line beside the lesion (its shadow would darken the reference) is left out
    assert hs.calcium_cnr(*_frame(rng, strut_row=150)) == pytest.approx(3.0, abs=0.3)
    # the reference is at calcium's depth: darker tissue deeper down does not count
    img[:, 80:] = 0.2
    assert hs.calcium_cnr(img, lab) == pytest.approx(3.0, abs=0.3)
    lab[lab == CALCIUM] = 0
    assert math.isnan(hs.calcium_cnr(img, lab))
    assert [hs.visibility_label(x) for x in (0.4, 1.0, 2.5, float("nan"))] == [
        "CNR < 1",
        "CNR 1-2",
        "CNR >= 2",
        "CNR not measured",
    ]


def test_visibility_strata_read_the_build_beside_params(tmp_path):
    build = tmp_path / "build" / "hyb-v0"
    build.mkdir(parents=True)
    (build / "params.json").write_text(json.dumps(PARAMS))
    rng = np.random.default_rng(1)
    frames = [_frame(rng, dark) for dark in [0.7] * 3 + [0.95] * 5]
    np.savez(build / "image.npz", frames=np.stack([f[0] for f in frames]))
    np.savez(build / "labels.npz", labels=np.stack([f[1] for f in frames]))
    pool = tmp_path / "pool"
    (pool / "params").mkdir(parents=True)
    (pool / "params" / "p-v0.json").symlink_to(build / "params.json")
    ev = _evaluated(
        tmp_path / "ev",
        [(2, 100, 80, 0.8, 40.0, 30.0), (7, 50, 0, 0.0, 20.0, None), (4, 0, 0, 0, None, None)],
    )
    df = hs.frames_table(pool, ev, visibility=True)
    assert df.loc[df["frame"] == 2, "cnr"].item() == pytest.approx(3.0, abs=0.3)
    assert df.loc[df["frame"] == 7, "cnr"].item() == pytest.approx(0.5, abs=0.2)
    assert math.isnan(df.loc[df["frame"] == 4, "cnr"].item())  # no truth calcium: not measured
    out = hs.strata(df)
    assert out["visibility: CNR >= 2"]["frames"] == 1 and out["visibility: CNR >= 2"]["dice"] == 0.8
    assert out["visibility: CNR < 1"]["missed"] == 1
    assert "visibility: CNR 1-2" not in out
    (build / "image.npz").unlink()
    with pytest.raises(SystemExit, match=r"image\.npz missing"):
        hs.frames_table(pool, ev, visibility=True)
