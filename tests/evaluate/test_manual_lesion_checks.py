"""The checks of manual_lesions.csv rows (evaluate.inputs.read_manual_lesions): start/end as
frames or mm, the end not before the start, calcium score and kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from octseg.core.errors import SchemaError
from octseg.evaluate.inputs import read_manual_lesions


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_interval_errors_name_the_line_and_the_unit(tmp_path: Path):
    frames = _csv(tmp_path / "f.csv", "pullback_id,start_frame,end_frame\np1,1,3\np1,9,4\n")
    with pytest.raises(SchemaError, match="line 3: end_frame < start_frame"):
        read_manual_lesions(frames)
    half = _csv(tmp_path / "h.csv", "pullback_id,start_frame,end_mm\np1,1,3.0\n")
    with pytest.raises(
        SchemaError, match="line 2: give start_frame and end_frame, or start_mm and end_mm"
    ):
        read_manual_lesions(half)


def test_frames_take_precedence_over_mm(tmp_path: Path):
    # frames given: the mm columns are not checked (here reversed), as the frames are used
    both = _csv(
        tmp_path / "b.csv",
        "pullback_id,start_frame,end_frame,start_mm,end_mm\np1,1,3,5.0,2.0\n",
    )
    (row,) = read_manual_lesions(both)["p1"]
    assert (row["start_frame"], row["end_frame"]) == (1, 3)
    # one frame column only: the mm pair is used
    mm = _csv(tmp_path / "m.csv", "pullback_id,start_frame,start_mm,end_mm\np1,1,0.5,2.5\n")
    (row,) = read_manual_lesions(mm)["p1"]
    assert (row["start_mm"], row["end_mm"]) == (0.5, 2.5)


def test_kind_is_lower_cased_and_a_blank_kind_or_score_is_accepted(tmp_path: Path):
    les = _csv(
        tmp_path / "k.csv",
        "pullback_id,start_frame,end_frame,calcium_score,kind\np1,1,3,4,MACRO\np1,5,6,,\n",
    )
    first, second = read_manual_lesions(les)["p1"]
    assert first["kind"] == "macro" and first["calcium_score"] == 4
    assert second["kind"] is None and second["calcium_score"] is None
    assert (first["_line"], second["_line"]) == (2, 3)
