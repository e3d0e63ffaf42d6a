"""End-to-end: `octseg evaluate` on tiny CSVs, label maps measured on the fly, overlap metrics
checked by hand, the self-check, and the Hydra entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from octseg.cli import main
from octseg.evaluate import evaluate
from octseg.evaluate.segmentation import compare_labels, summarize_overlap
from octseg.io.labels import LabelFile
from octseg.report.evaluation import render_html

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from evaluate_helpers import make_cohort, wilson  # noqa: E402


def _strict_json(path: Path) -> dict:
    def bad(c):
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(path.read_text(), parse_constant=bad)


def _tiny(tmp: Path, offset: float = 0.0) -> tuple[Path, Path]:
    auto = tmp / "auto"
    for pid in ("p1", "p2"):
        d = auto / pid
        d.mkdir(parents=True)
        rows = ["frame,position_mm,lumen_area_mm2,calcium_arc_deg"]
        for f in range(0, 25, 5):
            arc = "" if f in (0, 20) else str(60 + 3 * f)
            rows.append(f"{f},{f * 0.2:g},{5 + 0.3 * f + offset:g},{arc}")
        (d / "frames.csv").write_text("\n".join(rows) + "\n")
        (d / "summary.json").write_text(
            json.dumps(
                {
                    "lumen": {"mla_mm2": 5.0, "mla_frame": 0},
                    "calcium_lesions": [
                        {
                            "start_frame": 5,
                            "end_frame": 15,
                            "length_mm": 2.2,
                            "max_arc_deg": 105,
                            "max_thickness_mm": 0.6,
                            "calcium_score": 1,
                            "kind": "macro",
                            "risk_flags": [],
                        }
                    ],
                    "stent": None,
                }
            )
        )
        (d / "struts.csv").write_text(
            "frame,angle_deg,x_mm,y_mm,distance_mm,malapposed\n"
            "5,0,1.0,0.0,0.02,0\n5,90,0.0,1.0,0.3,1\n10,180,-1.0,0.0,0.0,0\n"
        )
    manual = tmp / "manual"
    manual.mkdir()
    rows = ["pullback_id,position_mm,lumen_area_mm2,calcium_arc_deg"]
    for pid in ("p1", "p2"):
        for f in range(0, 25, 5):
            arc = "" if f in (0, 20) else str(60 + 3 * f)
            rows.append(f"{pid},{f * 0.2:g},{5 + 0.3 * f:g},{arc}")
    (manual / "manual_frames.csv").write_text("\n".join(rows) + "\n")
    (manual / "manual_lesions.csv").write_text(
        "pullback_id,start_mm,end_mm,length_mm,max_arc_deg,max_thickness_mm,calcium_score,kind\n"
        "p1,1.0,3.0,2.2,105,0.6,1,macro\np2,1.0,3.0,2.2,105,0.6,1,macro\n"
        "p2,8.0,9.0,1.2,40,0.2,0,spotty\n"
    )
    (manual / "manual_struts.csv").write_text(
        "pullback_id,frame,x_mm,y_mm,distance_mm,malapposed\n"
        "p1,5,1.03,0.0,0.02,no\np1,5,0.0,1.0,0.3,yes\np1,10,-1.0,0.0,0.0,no\n"
        "p2,5,1.0,0.0,0.02,0\np2,5,0.0,1.0,0.3,1\n"
    )
    return auto, manual


def test_score_agreement_split_by_the_automated_borderline(tmp_path: Path):
    """The tiny outputs' lesions predate score_borderline: evaluate derives it from their values
    (thickness 0.6 lies within 0.1 mm of the 0.5 mm cut-off); an explicit list wins."""
    import pandas as pd

    auto, manual = _tiny(tmp_path)
    summary = auto / "p2" / "summary.json"
    s = json.loads(summary.read_text())
    s["calcium_lesions"][0].update(score_borderline=[], calcium_score=0)  # clear, and wrong
    summary.write_text(json.dumps(s))
    out = tmp_path / "out"
    assert (
        main(
            ["evaluate", "--auto", str(auto), "--manual", str(manual), "--out", str(out), "--quiet"]
        )
        == 0
    )
    split = _strict_json(out / "metrics.json")["lesions"]["calcium_score"]["by_auto_borderline"]
    assert split == {
        "near_cut_off": {"n": 1, "exact_agreement": 1.0},
        "clear": {"n": 1, "exact_agreement": 0.0},
    }
    rows = pd.read_csv(out / "lesions_cohort.csv", keep_default_na=False)
    matched = rows[rows.match == "matched"].set_index("pullback_id")
    assert matched.auto_score_borderline.to_dict() == {"p1": "thickness", "p2": ""}
    html = (out / "report.html").read_text()
    assert "automated lesion near a cut-off" in html and "clear of the cut-offs" in html


def test_cli_end_to_end_identical_and_offset(tmp_path: Path, capsys):
    auto, manual = _tiny(tmp_path)
    out = tmp_path / "out"
    rc = main(
        [
            "evaluate",
            "--auto",
            str(auto),
            "--manual",
            str(manual),
            "--out",
            str(out),
            "--quiet",
            "--n-bootstrap",
            "200",
        ]
    )
    assert rc == 0
    m = _strict_json(out / "metrics.json")
    lum = m["frames"]["measures"]["lumen_area_mm2"]
    assert lum["n"] == 10 and lum["bias"] == 0 and lum["icc"] == 1.0
    assert m["frames"]["matching"]["matched"] == 10
    les = m["lesions"]
    assert (les["detection"]["tp"], les["detection"]["fp"], les["detection"]["fn"]) == (2, 0, 1)
    assert les["measures"]["max_arc_deg"]["bias"] == 0
    st = m["struts"]
    assert (st["detection"]["tp"], st["detection"]["fp"], st["detection"]["fn"]) == (5, 1, 0)
    assert st["malapposition"]["sensitivity"]["value"] == 1.0
    for f in (
        "verdict.csv",
        "lesions_cohort.csv",
        "frames_matched.csv",
        "struts_matched.csv",
        "report.html",
        "plots/frame_lumen_area_mm2.png",
    ):
        assert (out / f).is_file(), f
    html = (out / "report.html").read_text()
    assert "Verdict" in html and "plots/frame_lumen_area_mm2.png" in html and "ICC(A,1)" in html
    assert "ICC 95% CI over pullbacks" in html
    assert "proportional bias (slope on manual) [95% CI over pullbacks]" in html
    cohort = (out / "lesions_cohort.csv").read_text().splitlines()
    assert len(cohort) == 4 and "manual_only" in cohort[-1] or "manual_only" in "".join(cohort)
    assert "lumen_area_mm2" in capsys.readouterr().out

    # constant offset of +0.5 mm² in every automated lumen area
    auto2, _ = _tiny(tmp_path / "b", offset=0.5)
    r = evaluate(auto2, manual, None, {"plots": False, "progress": False, "n_bootstrap": 200})
    lum = r.metrics["frames"]["measures"]["lumen_area_mm2"]
    assert lum["bias"] == pytest.approx(0.5)
    assert lum["loa_upper"] - lum["loa_lower"] == pytest.approx(0, abs=1e-9)
    assert lum["icc"] < 1
    # an offset is no proportional bias: the line of differences on manual is flat
    assert lum["proportional_slope"] == pytest.approx(0, abs=1e-9)
    row = next(v for v in r.metrics["verdict"] if v["measurement"] == "lumen_area_mm2")
    assert row["proportional_slope"] == pytest.approx(0, abs=1e-9)


def test_cli_errors_are_one_line(tmp_path: Path, capsys):
    auto, manual = _tiny(tmp_path)
    (manual / "manual_frames.csv").write_text("pullback_id,frame,lumen_area_mm2\np1,0,x\n")
    rc = main(
        [
            "evaluate",
            "--auto",
            str(auto),
            "--manual",
            str(manual),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "manual_frames.csv: line 2: column 'lumen_area_mm2'" in err
    rc = main(
        [
            "evaluate",
            "--auto",
            str(tmp_path / "nope"),
            "--manual",
            str(manual),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    assert rc == 1 and "no such file" in capsys.readouterr().err


def test_segmentation_overlap_by_hand(tmp_path: Path):
    a = np.zeros((3, 20, 20), np.uint8)
    m = np.zeros((3, 20, 20), np.uint8)
    a[0, 5:15, 5:15] = 1
    m[0, 5:15, 7:17] = 1  # shifted 2 px: Dice 0.8, IoU 2/3, HD95 = 2 px
    a[1, 2:4, 2:4] = 2  # calcium only in auto: Dice 0, no HD
    lfa = LabelFile(labels=a, space="cartesian", pixel_spacing_mm=0.05, frame_spacing_mm=0.2)
    lfm = LabelFile(labels=m, space="cartesian", pixel_spacing_mm=0.05, frame_spacing_mm=0.2)
    rows = compare_labels("p", lfa, lfm, classes=(1, 2))
    s = summarize_overlap(rows, (1, 2))
    lum, cal = s["lumen"], s["calcium"]
    assert lum["n_frames"] == 1 and lum["n_absent_both"] == 2
    assert lum["dice"]["mean"] == pytest.approx(0.8)
    assert lum["iou"]["mean"] == pytest.approx(2 / 3)
    assert lum["hd95_mm"]["median"] == pytest.approx(2 * 0.05)
    assert cal["n_frames"] == 1 and cal["dice"]["mean"] == 0 and cal["n_one_empty"] == 1
    assert cal["n_auto_only"] == 1 and cal["n_manual_only"] == 0
    assert cal["n_hd95"] == 0 and cal["n_absent_both"] == 2
    # one pullback: no interval over pullbacks
    assert lum["n_pullbacks"] == 1 and lum["dice_ci95"] == [None, None]


def test_segmentation_dice_ci_is_over_pullbacks():
    def pullback(shift: int) -> LabelFile:
        lab = np.zeros((4, 20, 20), np.uint8)
        lab[:, 5:15, 5 + shift : 15 + shift] = 1
        return LabelFile(labels=lab, space="cartesian", pixel_spacing_mm=0.05, frame_spacing_mm=0.2)

    manual = pullback(0)
    rows = [r for s in (0, 2, 4) for r in compare_labels(f"p{s}", pullback(s), manual, (1,))]
    lum = summarize_overlap(rows, (1,))["lumen"]
    # the pullbacks' Dice: 1.0, 0.8, 0.6 (every frame alike); mean 0.8; the t interval of the
    # three (t(2) = 4.303, SE 0.2 / sqrt 3), clipped at 1
    assert lum["n_pullbacks"] == 3 and lum["dice"]["mean"] == pytest.approx(0.8)
    lo, hi = lum["dice_ci95"]
    assert lo == pytest.approx(0.8 - 4.302653 * 0.2 / np.sqrt(3), abs=1e-5) and hi == 1.0
    lo_p, hi_p = lum["dice_pooled_ci95"]
    assert lo_p < lum["dice_pooled"] < hi_p
    # the console summary and the report say it
    from octseg.report.evaluation import _html_segmentation, summary_lines

    metrics = {"pullbacks": {"evaluated": ["p0", "p2", "p4"]}, "verdict": []}
    metrics["segmentation"] = {"classes": {"lumen": lum}}
    line = next(x for x in summary_lines(metrics) if "Dice=" in x)
    assert f"95% CI {lo:.3f}-{hi:.3f} (3 pullbacks)" in line
    assert f"[{lo:.3f}, {hi:.3f}]" in "".join(_html_segmentation(metrics))


def test_labels_measured_on_the_fly_and_self_check(tmp_path: Path):
    cohort = make_cohort(tmp_path / "cohort", n=2)
    settings = {"plots": False, "progress": False, "n_bootstrap": 200}
    # geometry of the label maps against the truth written from them: perfect agreement
    r = evaluate(cohort, cohort, tmp_path / "geo", {**settings, "auto_source": "labels"})
    m = r.metrics
    assert m["frames"]["measures"]["lumen_area_mm2"]["bias"] == pytest.approx(
        0, abs=1e-4
    )  # 6-digit CSV
    assert m["segmentation"]["classes"]["lumen"]["dice"]["mean"] == 1.0
    assert m["struts"]["detection"]["f1"] == 1.0
    assert m["pullback"]["measures"]["msa_mm2"]["icc"] in (1.0, None)
    # self-check without noise: identical; with noise: close but not perfect
    from octseg.evaluate.selfcheck import self_check

    z = self_check(cohort, tmp_path / "sc0", noise=0.0, settings=settings).metrics
    assert z["frames"]["measures"]["lumen_area_mm2"]["bias"] == 0
    assert z["frames"]["measures"]["lumen_area_mm2"]["icc"] == 1.0
    assert z["struts"]["detection"]["f1"] == 1.0
    assert z["segmentation"]["classes"]["lumen"]["dice"]["mean"] == 1.0
    assert z["frames"]["matching"]["manual_unmatched"] == 0  # manual rows given in mm
    n = self_check(cohort, tmp_path / "sc1", noise=1.0, settings=settings).metrics
    lum = n["frames"]["measures"]["lumen_area_mm2"]
    assert abs(lum["bias"]) < 0.1 and 0 < lum["mae"] < 0.2 and lum["icc"] > 0.9
    # the frames' pullbacks reach the statistics: two give the bias a t interval over them
    # (one degree of freedom, so wide), and are too few for the ICC's jackknife
    assert lum["n_pullbacks"] == 2 and lum["icc_ci_pullbacks"] == [None, None]
    lo, hi = lum["bias_ci_pullbacks"]
    assert lo < lum["bias"] < hi and hi - lo > lum["bias_ci"][1] - lum["bias_ci"][0]
    assert lum["icc_ci"][0] is not None
    assert 0.85 < n["struts"]["detection"]["f1"] < 1.0
    assert 0.95 < n["segmentation"]["classes"]["lumen"]["dice"]["mean"] < 1.0
    assert _strict_json(tmp_path / "sc1" / "metrics.json")["self_check"]["noise"] == 1.0


def test_hydra_entry_point(tmp_path: Path):
    auto, manual = _tiny(tmp_path)
    out = tmp_path / "hy"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluate.py"),
            f"auto={auto}",
            f"manual={manual}",
            f"out={out}",
            "settings.plots=false",
            "settings.progress=false",
            "settings.n_bootstrap=200",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _strict_json(out / "metrics.json")["settings"]["n_bootstrap"] == 200


def test_undetected_malapposed_strut_lowers_the_all_strut_sensitivity(tmp_path: Path, capsys):
    """``struts.malapposition`` compares matched pairs only; ``struts.malapposed_struts`` counts
    every manual malapposed strut: p2's is not detected at all and p1's is read as apposed."""
    auto, manual = _tiny(tmp_path)
    (auto / "p2" / "struts.csv").write_text(
        "frame,angle_deg,x_mm,y_mm,distance_mm,malapposed\n5,0,1.0,0.0,0.02,0\n10,180,-1.0,0.0,0.0,1\n"
    )
    (auto / "p1" / "struts.csv").write_text(
        "frame,angle_deg,x_mm,y_mm,distance_mm,malapposed\n"
        "5,0,1.0,0.0,0.02,0\n5,90,0.0,1.0,0.05,0\n10,180,-1.0,0.0,0.0,0\n"
    )
    out = tmp_path / "out"
    args = ["evaluate", "--auto", str(auto), "--manual", str(manual), "--out", str(out)]
    assert main([*args, "--n-bootstrap", "200"]) == 0
    st = _strict_json(out / "metrics.json")["struts"]
    assert st["malapposition"]["fn"] == 1 and st["malapposition"]["tp"] == 0  # p1, matched
    ms = st["malapposed_struts"]
    assert (ms["n_manual"], ms["found"], ms["missed_as_apposed"], ms["undetected"]) == (2, 0, 1, 1)
    assert ms["sensitivity"]["value"] == 0.0
    # two pullbacks, none found: Wilson at 0 of 2 struts with t(1), nearly uninformative
    assert ms["sensitivity"]["ci_pullbacks"] == pytest.approx(wilson(0.0, 2.0, 12.7062), abs=1e-4)
    assert ms["sensitivity"]["n_pullbacks"] == 2
    assert (ms["n_auto"], ms["auto_without_manual_strut"]) == (1, 1)  # p2's frame-10 call
    assert ms["ppv"]["value"] == 0.0
    assert "malapposed struts (all manual ones): found 0 of 2" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert "Manual malapposed struts, detected or not" in page
    assert "<td>2</td><td>0</td><td>1</td><td>1</td>" in page  # manual, found, apposed, undetected


def test_bias_by_pullback_shows_which_pullback_carries_the_pooled_bias(tmp_path: Path):
    auto, manual = _tiny(tmp_path)
    frames = auto / "p2" / "frames.csv"
    rows = [r.split(",") for r in frames.read_text().splitlines()]
    for r in rows[1:]:  # p2 alone reads every lumen 2 mm² too large
        r[2] = f"{float(r[2]) + 2.0:g}"
    frames.write_text("\n".join(",".join(r) for r in rows) + "\n")
    out = tmp_path / "out"
    r = evaluate(auto, manual, out, {"plots": False, "progress": False, "n_bootstrap": 200})
    per = r.metrics["frames"]["bias_by_pullback"]["lumen_area_mm2"]
    pooled = r.metrics["frames"]["measures"]["lumen_area_mm2"]["bias"]
    assert per["p1"]["n"] == per["p2"]["n"] == 5
    assert per["p1"]["bias"] == pytest.approx(0, abs=1e-9)
    assert per["p2"]["bias"] == pytest.approx(2.0) and per["p2"]["mae"] == pytest.approx(2.0)
    assert per["p2"]["part_of_pooled_bias"] == pytest.approx(1.0)
    assert sum(p["part_of_pooled_bias"] for p in per.values()) == pytest.approx(pooled)
    arc = r.metrics["frames"]["bias_by_pullback"]["calcium_arc_deg"]
    assert arc["p1"]["n"] == 3 and arc["p2"]["bias"] == pytest.approx(0, abs=1e-9)
    html = (out / "report.html").read_text()
    assert "Frame bias by pullback" in html and "2.000 (5) → 1.000" in html
    # one pullback: its bias is the pooled one, so the report shows no table
    one = {c: {"p1": v["p1"]} for c, v in r.metrics["frames"]["bias_by_pullback"].items()}
    metrics = {**r.metrics, "frames": {**r.metrics["frames"], "bias_by_pullback": one}}
    assert "Frame bias by pullback" not in render_html(metrics)


def test_malapposed_sensitivity_ci_over_pullbacks_is_wider_when_one_stent_holds_the_misses():
    from octseg.evaluate.pipeline import malapposed_struts

    def strut(pid: str, found: bool) -> dict:
        return {"pullback_id": pid, "match": "matched", "manual_malapposed": 1,
                "auto_malapposed": int(found)}  # fmt: skip

    # 60 malapposed struts in six stents; one stent holds all 10 misses
    rows = [strut(f"p{i}", True) for i in range(5) for _ in range(10)]
    rows += [strut("p5", False) for _ in range(10)]
    s = malapposed_struts(rows)["sensitivity"]
    assert s["value"] == pytest.approx(50 / 60) and s["n_pullbacks"] == 6
    lo, hi = s["ci_pullbacks"]
    wl, wh = s["ci"]
    assert lo < s["value"] < hi and (hi - lo) > 1.5 * (wh - wl)
    # by hand: the CR1 variance of the share 5/6 over the six stents is 6/5 x 5 x (10/6)^2
    # / 60^2 + ..., i.e. 1/36, so n_eff = (5/6)(1/6) / (1/36) = 5; Wilson at n 5 with t(5)
    assert (lo, hi) == pytest.approx(wilson(50 / 60, 5.0, 2.570582), abs=1e-5)
    # every strut found in six stents: no spread, so Wilson at all 30 struts with t(5)
    all_found = [strut(f"p{i}", True) for i in range(6) for _ in range(5)]
    ci = malapposed_struts(all_found)["sensitivity"]["ci_pullbacks"]
    assert ci == pytest.approx(wilson(1.0, 30.0, 2.570582), abs=1e-5)
    # one stent only: no interval over pullbacks
    one = [strut("p0", True), strut("p0", False)]
    assert malapposed_struts(one)["sensitivity"]["ci_pullbacks"] == [None, None]
    # the same share in every stent (1 of 2, 2 of 4): Wilson at 3 of 6 struts, t(1)
    alike = one + [strut("p1", found) for found in (True, True, False, False)]
    ci = malapposed_struts(alike)["sensitivity"]["ci_pullbacks"]
    assert ci == pytest.approx(wilson(0.5, 6.0, 12.7062), abs=1e-4)


def test_paired_values_keep_each_pairs_pullback():
    from octseg.evaluate.pipeline import _paired_values

    rows = [
        {"pullback_id": "p1", "auto_x": 1.0, "manual_x": 1.5},
        {"pullback_id": "p2", "auto_x": None, "manual_x": 2.0},
        {"pullback_id": "p3", "auto_x": 3.0, "manual_x": 3.5},
        {"pullback_id": "p4", "auto_x": 4.0, "manual_x": None},
    ]
    a, m, manual_only, auto_only, pids = _paired_values(rows, "x")
    assert (a, m, pids) == ([1.0, 3.0], [1.5, 3.5], ["p1", "p3"])
    assert (manual_only, auto_only) == (1, 1)


def _strut(pid: str, match: str, auto: bool | None, manual: bool) -> dict[str, Any]:
    return {
        "pullback_id": pid,
        "match": match,
        "auto_malapposed": auto,
        "manual_malapposed": manual,
    }


def test_malapposed_struts_line_counts_found_undetected_and_apposed():
    """One wording for the evaluate CLI's summary and ``make demo``'s last lines."""
    from octseg.evaluate.pipeline import malapposed_struts
    from octseg.report.evaluation import malapposed_struts_line

    struts = [
        _strut("a", "by_xy", True, True),
        _strut("a", "by_xy", True, True),
        _strut("a", "by_xy", False, True),  # read as apposed
        _strut("b", "manual_only", None, True),  # not detected
        _strut("b", "auto_only", True, False),  # a malapposed call on no strut
        _strut("b", "by_xy", False, False),
    ]
    ms = malapposed_struts(struts)
    line = malapposed_struts_line(ms)
    # pullback a found 2 of 3, b 0 of 1: n_eff 4, Wilson with t(1) = 12.706
    assert ms["sensitivity"]["ci_pullbacks"] == pytest.approx(wilson(0.5, 4.0, 12.7062), abs=1e-4)
    assert line == (
        "malapposed struts (all manual ones): found 2 of 4 (sensitivity 0.50, Wilson 95% CI "
        "0.15-0.85, over pullbacks 0.01-0.99; 1 undetected, 1 read as apposed); 3 called "
        "malapposed, PPV 0.67"
    )
    none = malapposed_struts_line(malapposed_struts(struts[5:]))
    assert none == "malapposed struts: none in the manual struts; 0 called malapposed"
    no_calls = malapposed_struts_line(malapposed_struts(struts[3:4]))
    assert "found 0 of 1" in no_calls and no_calls.endswith("0 called malapposed, PPV –")


def test_agreement_plot_draws_the_proportional_bias_fit():
    """The fit spans the manual values: automated = intercept + (1 + slope) x manual."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from octseg.report.evaluation import _trend_line

    fig, ax = plt.subplots()
    manual = np.array([0.3, 0.6, 1.1])
    _trend_line(ax, manual, {"proportional_slope": -0.25, "proportional_intercept": 0.15})
    (line,) = ax.get_lines()
    assert line.get_label() == "fit: slope 0.75"
    np.testing.assert_allclose(line.get_xdata(), [0.3, 1.1])
    np.testing.assert_allclose(line.get_ydata(), [0.15 + 0.225, 0.15 + 0.825])
    _trend_line(ax, manual, {"proportional_slope": None, "proportional_intercept": None})
    assert len(ax.get_lines()) == 1  # nothing drawn without a slope
    plt.close(fig)


def test_plot_measure_draws_the_fit_on_the_scatter(monkeypatch):
    """plot_measure hands the manual values and the statistics to the fit helper, on the first
    (scatter) axes; the PNG is written either way."""
    import numpy as np

    import octseg.report.evaluation as rep

    calls = []
    monkeypatch.setattr(rep, "_trend_line", lambda ax, manual, st: calls.append((ax, manual, st)))
    st = {"proportional_slope": -0.2, "proportional_intercept": 0.1, "bias": 0.0}
    png = rep.plot_measure([0.3, 0.5, 0.9], [0.2, 0.5, 1.0], "t", "mm", st)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    ((ax, manual, got),) = calls
    assert ax.get_title() == "agreement"
    np.testing.assert_allclose(manual, [0.2, 0.5, 1.0])
    assert got is st
