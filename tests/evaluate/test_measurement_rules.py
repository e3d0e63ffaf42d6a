"""Both sides of an evaluation follow today's measurement rules: tables octseg measured under
older rules are re-measured from their label maps, tables that do not say which rules made them
are flagged, and manual CSVs or analytic truth tables are left as they are."""

from __future__ import annotations

import json
from pathlib import Path

from geometry_scenes import label_file, scene

from octseg.evaluate.pipeline import evaluate
from octseg.geometry import measure_labels
from octseg.geometry.settings import MEASUREMENT_RULES
from octseg.io.labels import save_labels


def _pullback(root: Path, pid: str = "pb", radius: float = 0.6) -> Path:
    """A measured pullback folder: labels.npz and the tables octseg writes beside it."""
    d = root / pid
    frames = [scene("polar", lumen=(0.0, 0.0, radius + 0.02 * i)) for i in range(4)]
    lf = label_file(frames, "polar")
    d.mkdir(parents=True)
    save_labels(d / "labels.npz", lf)
    measure_labels(lf).write(d)
    return d


def _age(d: Path, rules, lumen_area: float = 99.0) -> None:
    """Make ``d``'s tables look written by an older octseg: ``rules`` (None: not recorded) and a
    lumen area the old definitions gave."""
    summary = json.loads((d / "summary.json").read_text())
    summary.pop("measurement_rules")
    if rules is not None:
        summary["measurement_rules"] = rules
    (d / "summary.json").write_text(json.dumps(summary))
    lines = (d / "frames.csv").read_text().splitlines()
    col = lines[0].split(",").index("lumen_area_mm2")
    rows = [line.split(",") for line in lines[1:]]
    for r in rows:
        r[col] = str(lumen_area)
    (d / "frames.csv").write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")


def _run(tmp_path: Path):
    ev = evaluate(tmp_path / "auto", tmp_path / "manual", None, {"plots": False, "progress": False})
    bias = ev.metrics["frames"]["measures"]["lumen_area_mm2"]["bias"]
    return bias, ev.metrics["warnings"]


def test_tables_record_the_rules_they_were_measured_under(tmp_path):
    d = _pullback(tmp_path)
    assert json.loads((d / "summary.json").read_text())["measurement_rules"] == MEASUREMENT_RULES


def test_older_tables_are_re_measured_from_their_labels(tmp_path):
    _pullback(tmp_path / "auto")
    _age(_pullback(tmp_path / "manual"), rules=1)
    bias, warnings = _run(tmp_path)
    # the same labels under the same rules on both sides (CSV rounding: 6 significant digits)
    assert abs(bias) < 1e-4
    assert any("re-measured" in w and "pb (1)" in w for w in warnings)


def test_tables_that_do_not_record_their_rules_are_flagged_and_kept(tmp_path):
    _pullback(tmp_path / "auto")
    _age(_pullback(tmp_path / "manual"), rules=None)
    bias, warnings = _run(tmp_path)
    assert bias < -90  # the manual tables' 99 mm² were read as they are
    assert any("do not say which measurement rules" in w and "pb" in w for w in warnings)


def test_current_tables_are_read_without_a_warning(tmp_path):
    _pullback(tmp_path / "auto")
    _pullback(tmp_path / "manual")
    bias, warnings = _run(tmp_path)
    assert abs(bias) < 1e-4
    assert not any("rules" in w for w in warnings)


def test_older_tables_without_labels_are_flagged(tmp_path):
    _pullback(tmp_path / "auto")
    d = _pullback(tmp_path / "manual")
    _age(d, rules=1)
    (d / "labels.npz").unlink()
    _, warnings = _run(tmp_path)
    assert any("no labels.npz to re-measure" in w for w in warnings)


def test_analytic_truth_tables_are_never_re_measured(tmp_path):
    _pullback(tmp_path / "auto")
    d = _pullback(tmp_path / "manual")
    _age(d, rules=1)
    summary = json.loads((d / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps({**summary, "analytic_truth": True}))
    bias, warnings = _run(tmp_path)
    assert bias < -90 and not any("rules" in w for w in warnings)


def test_a_manual_label_map_without_tables_is_measured(tmp_path):
    _pullback(tmp_path / "auto")
    d = _pullback(tmp_path / "manual")
    for name in ("frames.csv", "struts.csv", "summary.json"):
        (d / name).unlink()
    bias, warnings = _run(tmp_path)  # the lumen compared, not only overlapped
    assert abs(bias) < 1e-4 and not any("rules" in w for w in warnings)


def test_manual_tables_false_measures_the_label_map_instead(tmp_path):
    _pullback(tmp_path / "auto")
    _age(_pullback(tmp_path / "manual"), rules=None)
    ev = evaluate(
        tmp_path / "auto",
        tmp_path / "manual",
        None,
        {"plots": False, "progress": False, "manual_tables": False},
    )
    assert abs(ev.metrics["frames"]["measures"]["lumen_area_mm2"]["bias"]) < 1e-4


def test_older_automated_tables_are_re_measured_too(tmp_path):
    _age(_pullback(tmp_path / "auto"), rules=2)
    _pullback(tmp_path / "manual")
    bias, warnings = _run(tmp_path)
    assert abs(bias) < 1e-4
    assert any(w.startswith("automated:") and "re-measured" in w for w in warnings)


def test_newer_tables_are_read_as_they_are(tmp_path):
    _pullback(tmp_path / "auto")
    _age(_pullback(tmp_path / "manual"), rules=MEASUREMENT_RULES + 1)
    bias, warnings = _run(tmp_path)
    assert bias < -90 and any("newer rules" in w for w in warnings)


def test_what_a_manual_csv_gives_is_kept_when_tables_are_re_measured(tmp_path):
    _pullback(tmp_path / "auto")
    d = _pullback(tmp_path / "manual")
    _age(d, rules=1)
    (d / "struts.csv").unlink()
    (tmp_path / "manual" / "manual_struts.csv").write_text(
        "pullback_id,frame,x_mm,y_mm,distance_mm\npb,1,0.5,0.1,0.2\npb,2,0.4,0.2,0.0\n"
    )
    ev = evaluate(tmp_path / "auto", tmp_path / "manual", None, {"plots": False, "progress": False})
    assert abs(ev.metrics["frames"]["measures"]["lumen_area_mm2"]["bias"]) < 1e-4  # re-measured
    assert ev.metrics["struts"]["detection"]["fn"] == 2  # the CSV's two struts, none in auto


def test_long_reading_steps_show_progress(tmp_path, capsys):
    """Re-measuring older tables and measuring manual label maps can take minutes on a cohort:
    each gets its own progress bar (on stderr), as reading the automated side does."""
    _age(_pullback(tmp_path / "auto"), rules=2)
    d = _pullback(tmp_path / "manual")
    for name in ("frames.csv", "struts.csv", "summary.json"):
        (d / name).unlink()
    evaluate(tmp_path / "auto", tmp_path / "manual", None, {"plots": False, "progress": True})
    err = capsys.readouterr().err
    for desc in (
        "reading automated results",
        "reading manual measurements",
        "re-measuring automated results (older rules)",
        "evaluating",
    ):
        assert desc in err, desc
    assert "re-measuring manual" not in err  # nothing of the manual side is stale
