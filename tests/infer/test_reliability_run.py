"""Issue 15, the run / output-safety half: infer.py never writes into its inputs nor over files
octseg did not write, holds one run per output folder, keeps run-level names for itself, lets
optional outputs fail alone, leaves nothing result-like behind a failed pullback, and refuses
nonsensical settings at start with one line (docs/inference.md, Safety). Each test reproduces a
row of the issue's table and failed on the code before the fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from model_helpers import TINY_MODEL, oracle_predictor, polar_npz, quiet_settings

from octseg.core.errors import InputError
from octseg.infer import pipeline
from octseg.infer.inputs import discover
from octseg.infer.pipeline import run_inference
from octseg.model.predictor import save_untrained_checkpoint

ROOT = Path(__file__).resolve().parents[2]
GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}


# ------------------------------------------------------------------------------ helpers
def oracle():
    return oracle_predictor(GRID, context_frames=1)


def polar_dicom(path: Path, n_frames: int = 3) -> Path:
    from octseg.io.dicom_write import write_ivoct_dicom

    frames = np.zeros((n_frames, 64, 48), np.uint8)
    frames[:, :, :20] = 64
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ivoct_dicom(path, frames, space="polar", pixel_spacing_mm=0.04, frame_spacing_mm=0.2)
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders)."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def dataset(root: Path, ids=("case1", "case2")) -> Path:
    """A dataset folder (docs/dataset.md): ``<id>/image.npz`` + ground-truth ``labels.npz``."""
    for i in ids:
        polar_npz(root / i / "image.npz")
        (root / i / "labels.npz").write_bytes(b"GROUND TRUTH " + i.encode())
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    grid = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.05}
    return save_untrained_checkpoint(
        tmp_path_factory.mktemp("ck") / "model.pt", model_cfg=TINY_MODEL, net_grid=grid
    )


def cli(ckpt: Path, inp, out, *extra: str, timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ROOT / "infer.py"),
        f"checkpoint={ckpt}",
        f"input={inp}",
        f"output={out}",
        "progress=false",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infer.py: error: "), res.stderr
    return lines[0]


# ------------------------------------------------------------------------------ row 1
def test_cli_output_equal_to_the_dataset_is_refused_and_nothing_is_written(tmp_path, ckpt):
    """The issue's command: ``input=DATASET output=DATASET`` overwrote every ground truth."""
    ds = dataset(tmp_path / "ds")
    before = tree(ds)
    line = one_line_error(cli(ckpt, ds, ds))
    assert str(ds) in line and "input" in line
    assert tree(ds) == before  # not even a log folder


@pytest.mark.parametrize("where", ["equal", "inside", "containing", "pullback_folder"])
def test_output_overlapping_an_input_is_refused(tmp_path, where):
    ds = dataset(tmp_path / "ds")
    out = {
        "equal": ds,
        "inside": ds / "predictions",
        "containing": tmp_path,
        "pullback_folder": ds / "case1",  # input named through a list file below
    }[where]
    inp = ds
    if where == "pullback_folder":
        inp = tmp_path / "list.txt"
        inp.write_text("ds/case1\nds/case2\n")
    before = tree(tmp_path)
    with pytest.raises(InputError, match="never writes into its inputs"):
        run_inference(quiet_settings(inp, out), oracle())
    assert tree(tmp_path) == before


def test_files_octseg_did_not_write_are_never_written_over(tmp_path):
    inp = tmp_path / "in"
    polar_npz(inp / "case1.npz")
    polar_npz(inp / "case2.npz")
    # an output folder that happens to hold another dataset's ground truth under the same id
    out = tmp_path / "other_dataset"
    (out / "case1").mkdir(parents=True)
    (out / "case1" / "labels.npz").write_bytes(b"SOMEONE ELSE'S LABELS")
    (out / "notes.txt").write_text("keep me")
    before = tree(out)
    res = run_inference(quiet_settings(inp, out), oracle())
    recs = res["manifest"]["pullbacks"]
    assert recs["case2"]["status"] == "done"
    assert recs["case1"]["status"] == "failed" and recs["case1"]["stage"] == "output"
    error = recs["case1"]["error"]
    assert "labels.npz" in error and "not written by octseg" in error
    after = tree(out)
    for rel, data in before.items():  # every file that was there is byte for byte the same
        assert after[rel] == data, rel
    # a second run: still refused, still untouched
    run_inference(quiet_settings(inp, out), oracle())
    assert tree(out)["case1/labels.npz"] == b"SOMEONE ELSE'S LABELS"


def test_run_level_files_octseg_did_not_write_refuse_the_run(tmp_path):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("a spreadsheet\n")
    before = tree(out)
    with pytest.raises(InputError, match="summary.csv"):
        run_inference(quiet_settings(inp, out), oracle())
    assert tree(out) == before


def test_outputs_of_an_older_version_are_recognised_and_resumed(tmp_path):
    """Folders written before the marker existed (done.json / manifest.json) stay octseg's."""
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    out = tmp_path / "out"
    run_inference(quiet_settings(inp, out), oracle())
    for marker in out.rglob(".octseg-output.json"):
        marker.unlink()
    res = run_inference(quiet_settings(inp, out), oracle())
    assert res["manifest"]["pullbacks"]["case1"]["skipped"] is True
    res = run_inference(quiet_settings(inp, out, resume=False), oracle())  # redone, not refused
    assert res["manifest"]["pullbacks"]["case1"]["status"] == "done"


# ------------------------------------------------------------------------------ row 2
def _png_frames(folder: Path, n: int = 3) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((48, 64), 64, np.uint8)).save(folder / f"frame_{i:03d}.png")
    return folder


def test_output_parent_of_a_frame_folder_is_refused(tmp_path):
    parent = tmp_path / "study"
    frames = _png_frames(parent / "pb1")
    before = tree(tmp_path)
    with pytest.raises(InputError, match="contains the input"):
        run_inference(
            quiet_settings(frames, parent, pixel_spacing_mm=0.04, frame_spacing_mm=0.2), oracle()
        )
    assert tree(tmp_path) == before


def test_discovery_never_takes_octseg_outputs_for_pullbacks(tmp_path):
    """What an older version left in a frame folder (outputs mixed into the input) and an
    output folder beside the pullbacks are not pullbacks."""
    parent = tmp_path / "study"
    frames = _png_frames(parent / "pb1")
    # an older version's outputs written into the frame folder itself
    _png_frames(frames / "overlays", 2)
    polar_npz(frames / "labels.npz")
    (frames / "frames.csv").write_text("frame\n")
    (frames / "done.json").write_text(json.dumps({"fingerprint": "x", "outputs": {}}))
    # a results folder of this version beside the pullbacks
    res = parent / "results"
    _png_frames(res / "pb0" / "overlays", 2)
    (res / ".octseg-output.json").write_text("{}")
    (res / "pb0" / ".octseg-output.json").write_text("{}")
    assert [(t.id, t.path) for t in discover(frames)] == [("pb1", frames)]
    assert [(t.id, t.path) for t in discover(parent)] == [("pb1", frames)]


# ------------------------------------------------------------------------------ row 7
HOLDER = """
import sys, time
from octseg.infer.safety import claim_output
lock = claim_output(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def test_one_run_per_output_folder_and_no_stale_lock(tmp_path, capsys):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = {"checkpoint": "unused.pt", "input": str(inp), "output": str(out)}
        assert pipeline.main({**cfg, "progress": False}) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(out) in err[0] and f"pid {holder.pid}" in err[0], err
        assert not (out / "case1").exists() and not (out / "manifest.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder: the kernel drops its flock
        holder.wait(timeout=30)
    assert (out / ".octseg-lock").read_text().strip() == str(holder.pid)  # stale pid left
    res = run_inference(quiet_settings(inp, out), oracle())
    assert res["manifest"]["pullbacks"]["case1"]["status"] == "done"


def test_lock_is_released_after_a_run(tmp_path):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    out = tmp_path / "out"
    run_inference(quiet_settings(inp, out), oracle())
    res = run_inference(quiet_settings(inp, out), oracle())  # same process, lock released
    assert res["manifest"]["n_done"] == 1
    t0 = time.time()  # and another process can take it at once
    probe = subprocess.run(
        [sys.executable, "-c", HOLDER.replace("time.sleep(120)", ""), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and "locked" in probe.stdout, probe.stderr
    assert time.time() - t0 < 60


# ------------------------------------------------------------------------------ row 8
def test_inputs_named_like_run_level_files(tmp_path):
    inp = tmp_path / "in"
    for name in ("summary.csv", "manifest.json", "ids_private.csv", "plain"):
        polar_npz(inp / f"{name}.npz")
    out = tmp_path / "out"
    res = run_inference(quiet_settings(inp, out), oracle())
    man = res["manifest"]
    assert set(man["pullbacks"]) == {
        "ids_private.csv-2",
        "manifest.json-2",
        "plain",
        "summary.csv-2",
    }
    assert man["n_done"] == 4
    assert (out / "summary.csv").is_file() and (out / "manifest.json").is_file()
    cohort = (out / "summary.csv").read_text()
    assert "summary.csv-2" in cohort and "manifest.json-2" in cohort
    assert json.loads((out / "manifest.json").read_text())["n_done"] == 4


# ------------------------------------------------------------------------------ row 9
def _raise(*args, **kwargs):
    raise RuntimeError("writer exploded")


@pytest.mark.parametrize(
    "broken, missing, named",
    [
        ("octseg.io.dicomseg.write_dicom_seg", "seg.dcm", "DICOM-SEG"),
        ("octseg.report.overlay.write_overlay_jobs", "overlays", "overlays"),
        ("octseg.report.pullback.write_report", "report.html", "report"),
    ],
)
def test_an_optional_output_failing_never_fails_the_pullback(
    tmp_path, monkeypatch, capsys, broken, missing, named
):
    module, attr = broken.rsplit(".", 1)
    monkeypatch.setattr(__import__(module, fromlist=[attr]), attr, _raise)
    inp = polar_dicom(tmp_path / "in" / "case1.dcm")
    out = tmp_path / "out"
    res = run_inference(quiet_settings(inp, out, report=True, overlay_frames=[0, 1]), oracle())
    rec = res["manifest"]["pullbacks"]["case1"]
    assert rec["status"] == "done", rec
    assert len(rec["warnings"]) == 1 and named in rec["warnings"][0]
    assert "writer exploded" in rec["warnings"][0]
    done = json.loads((out / "case1" / "done.json").read_text())
    assert done["warnings"] == rec["warnings"]
    assert not any(k == missing or k.startswith(missing + "/") for k in done["outputs"])
    assert not (out / "case1" / missing).exists()
    for kept in ("labels.npz", "frames.csv", "struts.csv", "summary.json"):
        assert (out / "case1" / kept).is_file() and kept in done["outputs"]
    assert f"WARNING case1: {rec['warnings'][0]}" in capsys.readouterr().out
    # the others are there
    expected = {"seg.dcm", "overlays", "report.html"} - {missing}
    assert expected <= {k.split("/")[0] for k in done["outputs"]}


def test_dicom_without_frame_of_reference_is_done(tmp_path):
    import pydicom

    inp = polar_dicom(tmp_path / "in" / "case1.dcm")
    ds = pydicom.dcmread(inp)
    del ds.FrameOfReferenceUID
    ds.save_as(inp)
    out = tmp_path / "out"
    rec = run_inference(quiet_settings(inp, out), oracle())["manifest"]["pullbacks"]["case1"]
    assert rec["status"] == "done", rec
    assert (out / "case1" / "labels.npz").is_file() and (out / "case1" / "frames.csv").is_file()
    # the DICOM-SEG is written, or its absence is a recorded warning
    assert (out / "case1" / "seg.dcm").is_file() or any(
        "DICOM-SEG" in w for w in rec.get("warnings", [])
    )


# ------------------------------------------------------------------------------ row 12
def test_an_empty_folder_in_a_list_file_is_a_failed_input(tmp_path):
    good = polar_npz(tmp_path / "good.npz")
    (tmp_path / "empty").mkdir()
    lst = tmp_path / "list.txt"
    lst.write_text(f"{good}\nmissing.npz\nempty\n")
    out = tmp_path / "out"
    man = run_inference(quiet_settings(lst, out), oracle())["manifest"]
    st = {k: v["status"] for k, v in man["pullbacks"].items()}
    assert st == {"good": "done", "missing": "failed", "empty": "failed"}
    assert "holds no pullback image" in man["pullbacks"]["empty"]["error"]
    assert "list.txt" in man["pullbacks"]["empty"]["error"]


# ------------------------------------------------------------------------------ row 13
def test_a_failed_pullback_leaves_no_result_looking_files(tmp_path, monkeypatch):
    import octseg.geometry

    inp = polar_dicom(tmp_path / "in" / "case1.dcm")
    lst = tmp_path / "list.txt"  # a list file: a missing pullback is recorded, not a usage error
    lst.write_text(f"{inp}\n")
    out = tmp_path / "out"
    monkeypatch.setattr(octseg.geometry, "measure_labels", _raise)  # after labels + seg.dcm
    rec = run_inference(quiet_settings(lst, out), oracle())["manifest"]["pullbacks"]["case1"]
    assert rec["status"] == "failed" and rec["stage"] == "write"
    assert {"labels.npz", "seg.dcm"} <= set(rec["removed_outputs"])
    assert not (out / "case1").exists()
    monkeypatch.undo()
    # a complete earlier result (with its done.json) of a pullback that cannot be read now
    # (input moved away) is kept, and the manifest says so
    run_inference(quiet_settings(lst, out), oracle())
    before = tree(out / "case1")
    inp.rename(inp.with_suffix(".moved"))
    rec = run_inference(quiet_settings(lst, out), oracle())["manifest"]["pullbacks"]["case1"]
    assert rec["status"] == "failed" and rec["earlier_result_kept"] is True
    assert "removed_outputs" not in rec and tree(out / "case1") == before
    # a redo that fails after cleaning leaves nothing
    inp.with_suffix(".moved").rename(inp)
    monkeypatch.setattr(octseg.geometry, "measure_labels", _raise)
    recs = run_inference(quiet_settings(lst, out, resume=False), oracle())["manifest"]["pullbacks"]
    assert recs["case1"]["status"] == "failed" and "labels.npz" in recs["case1"]["removed_outputs"]
    assert not (out / "case1").exists()


# ------------------------------------------------------------------------------ row 14
def test_cli_output_a_file_or_under_a_file_is_one_line_exit_2(tmp_path, ckpt):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    afile = tmp_path / "results.txt"
    afile.write_text("not a folder")
    line = one_line_error(cli(ckpt, inp, afile))
    assert str(afile) in line and "not a folder" in line
    line = one_line_error(cli(ckpt, inp, afile / "sub"))
    assert "results.txt" in line and "folder" in line
    assert afile.read_text() == "not a folder"


def test_cli_bogus_device_is_one_line_exit_2(tmp_path, ckpt):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    line = one_line_error(cli(ckpt, inp, tmp_path / "out", "device=bogus"))
    assert "device='bogus'" in line and "cpu" in line
    assert not (tmp_path / "out").exists()


def test_read_only_output_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
    else:  # root ignores permission bits: the file system refuses instead
        real_open = os.open

        def refuse(path, *args, **kwargs):
            if str(path).startswith(str(ro)):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        real_mkdir = Path.mkdir

        def refuse_mkdir(self, *args, **kwargs):
            if str(self).startswith(str(ro)):
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
        monkeypatch.setattr(Path, "mkdir", refuse_mkdir)
    try:
        for out in (ro, ro / "sub"):
            cfg = {"checkpoint": "unused.pt", "input": str(inp), "output": str(out)}
            assert pipeline.main({**cfg, "progress": False}) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "Permission denied" in err[0] and str(ro) in err[0], err
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------------------ row 15
@pytest.mark.parametrize(
    "override, named",
    [
        ({"read_chunk": 0}, "read_chunk=0"),
        ({"overlays": {"size": 0}}, "overlays.size=0"),
        ({"overlays": {"size": "big"}}, "overlays.size='big'"),
        ({"tta": {"enabled": "yes"}}, "tta.enabled='yes'"),
        ({"tta": {"enabled": True, "flip": "no"}}, "tta.flip='no'"),
        ({"overlays": {"frames": "first"}}, "overlays.frames='first'"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"tta": {"enabled": True, "rolls": 0}}, "tta.rolls=0"),
        ({"writers": -1}, "writers=-1"),
        ({"prefetch": -1}, "prefetch=-1"),
        ({"readers": 0}, "readers"),
        ({"pixel_spacing_mm": -0.01}, "pixel_spacing_mm=-0.01"),
        ({"frame_spacing_mm": float("nan")}, "frame_spacing_mm=nan"),
        ({"resample": "nearest"}, "resample='nearest'"),
        ({"report": "maybe"}, "report='maybe'"),
        ({"format": "jpeg2000"}, "format='jpeg2000'"),
        ({"geometry_device": "gpu"}, "geometry_device='gpu'"),
        ({"dist_timeout_min": 0}, "dist_timeout_min=0"),
    ],
)
def test_nonsensical_settings_are_refused_at_start(tmp_path, capsys, ckpt, override, named):
    inp = polar_npz(tmp_path / "in" / "case1.npz")
    out = tmp_path / "out"
    cfg = {"checkpoint": str(ckpt), "input": str(inp), "output": str(out), "progress": False}
    assert pipeline.main({**cfg, **override}) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err
    assert "not allowed" in err[0] or "must be" in err[0], err  # with the allowed range
    assert not out.exists()  # refused before anything was written
