"""benchmarks/hybrid_pool.py pool: console exports linked under unique draw ids, and a draw
folder that is not a console export named before anything is linked."""

from __future__ import annotations

import pytest

from benchmarks import hybrid_pool as hp


def _console(root, ids):
    for pid in ids:
        for part in ("inputs", "manual"):
            (root / part / pid).mkdir(parents=True)
    return root


def test_pool_links_each_draw_under_its_name(tmp_path):
    a = _console(tmp_path / "a", ["hyb-val-140-186-v0", "hyb-val-140-186-v1"])
    b = _console(tmp_path / "b", ["hyb-val-140-186-v0"])
    ids = hp.pool(tmp_path / "pool", {"d0": a, "d9": b})
    assert ids == ["d0-v0", "d0-v1", "d9-v0"]
    link = tmp_path / "pool" / "manual" / "d9-v0"
    assert link.is_symlink() and link.resolve() == (b / "manual" / "hyb-val-140-186-v0").resolve()


def test_pool_names_a_missing_console_folder_and_links_nothing(tmp_path):
    a = _console(tmp_path / "a", ["hyb-val-140-186-v0"])
    with pytest.raises(SystemExit, match=r"draw d10: .*missing has no inputs or manual/"):
        hp.pool(tmp_path / "pool", {"d0": a, "d10": tmp_path / "missing"})
    assert not (tmp_path / "pool").exists()


def test_table_row_counts_found_false_and_missed_lesions():
    """The lesion detection counts of evaluate.py's metrics.json reach the table; results
    written before they were recorded show dashes."""
    from hybrid_candidates import row_from_metrics

    metrics = {"lesions": {"detection": {"tp": 30, "fp": 3, "fn": 1, "f1": 0.94}}}
    cells = [c.strip() for c in hp.row_line("run", row_from_metrics(metrics)).split("|")]
    header = [c.strip() for c in hp.HEADER.splitlines()[0].split("|")]
    col = header.index("lesions found / false / missed")
    assert cells[col] == "30 / 3 / 1"
    old = row_from_metrics({})
    assert [c.strip() for c in hp.row_line("old", old).split("|")][col] == "– / – / –"


def test_table_row_gives_the_dice_interval_over_pullbacks():
    """evaluate.py's Dice CI over pullbacks reaches the Dice cell; older results show none."""
    from hybrid_candidates import row_from_metrics

    cal = {"dice": {"mean": 0.741}, "dice_pooled": 0.839, "dice_ci95": [0.660, 0.812]}
    metrics = {"segmentation": {"classes": {"calcium": cal}}}
    header = [c.strip() for c in hp.HEADER.splitlines()[0].split("|")]
    col = header.index("Ca Dice [95% CI over pullbacks] (pooled)")
    cell = [c.strip() for c in hp.row_line("run", row_from_metrics(metrics)).split("|")][col]
    assert cell == "0.74 [0.66, 0.81] (0.84)"
    del cal["dice_ci95"]
    cell = [c.strip() for c in hp.row_line("old", row_from_metrics(metrics)).split("|")][col]
    assert cell == "0.74 (0.84)"


def test_table_row_gives_thickness_and_malapposed_intervals_over_pullbacks():
    """evaluate.py's CIs over pullbacks reach the thickness ICC and malapposed cells; older
    results (without them) show the values alone."""
    from hybrid_candidates import row_from_metrics

    thick = {
        "n": 677,
        "icc": 0.747,
        "icc_ci_pullbacks": [0.577, 0.857],
        "proportional_slope": -0.283,
    }
    sens = {"value": 0.96, "ci_pullbacks": [0.91, 0.99]}
    metrics = {
        "frames": {"measures": {"calcium_max_thickness_mm": thick}},
        "struts": {
            "malapposition": {"sensitivity": {"value": 0.95}},
            "malapposed_struts": {"found": 209, "n_manual": 218, "sensitivity": sens},
        },
    }
    header = [c.strip() for c in hp.HEADER.splitlines()[0].split("|")]
    t_col = header.index("thick ICC [95% CI over pullbacks]; slope on truth")
    m_col = next(i for i, h in enumerate(header) if h.startswith("mal. sens"))
    cells = [c.strip() for c in hp.row_line("run", row_from_metrics(metrics)).split("|")]
    assert cells[t_col] == "0.75 [0.58, 0.86]; -0.28"
    # the share of all manual malapposed struts (209/218), not the matched pairs' 0.95
    assert cells[m_col].startswith("0.96 (209/218 [0.91, 0.99])")
    del thick["icc_ci_pullbacks"], thick["proportional_slope"], sens["ci_pullbacks"]
    cells = [c.strip() for c in hp.row_line("old", row_from_metrics(metrics)).split("|")]
    assert cells[t_col] == "0.75" and cells[m_col].startswith("0.96 (209/218)")
    del metrics["struts"]["malapposed_struts"]  # older results: the matched pairs' value
    cells = [c.strip() for c in hp.row_line("old", row_from_metrics(metrics)).split("|")]
    assert cells[m_col].startswith("0.95 (")


def test_candidate_rows_name_the_matched_pairs_sensitivity_and_show_the_found_share():
    """hybrid_candidates' rows keep the matched pairs' value under its own name; both tables
    show found / all manual malapposed struts, and results of session 51 and before (key
    ``malapposed_sensitivity``, no counts) their matched value."""
    from hybrid_candidates import malapposed_share, row_from_metrics

    struts = {
        "malapposition": {"sensitivity": {"value": 0.95}},
        "malapposed_struts": {"found": 60, "n_manual": 74},
    }
    r = row_from_metrics({"struts": struts})
    assert r["malapposed_sensitivity_matched"] == 0.95 and "malapposed_sensitivity" not in r
    assert malapposed_share(r) == 60 / 74
    assert malapposed_share({"malapposed_sensitivity": 0.81}) == 0.81  # an old row
    assert malapposed_share({}) is None
